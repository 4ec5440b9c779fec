// Inverted dropout on the GPU with the counter-based masks of kernels/common/dropout_mask.h:
// the same mask bits as the CPU backend for the same (spec, block). Same contracts as
// kernels/cpu/dropout.h on device pointers, queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/common/dropout_mask.h"
#include "kernels/cpu/dropout.h"

namespace ph::cuda {

// Where a [rows, cols] block sits in the unsharded tensor: the CPU backend's type, so one
// value describes a call on either backend.
using DropoutBlock = cpu::DropoutBlock;

// out = inp * mask / (1 - p). out may alias inp. p == 0 copies (or does nothing in place).
void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                     const DropoutBlock& blk, cudaStream_t stream);
// dinp = dout * mask / (1 - p), mask regenerated. dinp may alias dout. Overwrites dinp.
void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                      const DropoutBlock& blk, cudaStream_t stream);

}  // namespace ph::cuda
