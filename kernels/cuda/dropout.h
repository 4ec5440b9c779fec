// Inverted dropout on the GPU with the counter-based masks of kernels/common/dropout_mask.h:
// the same mask bits as the CPU backend for the same (spec, block). Same contracts as
// kernels/cpu/dropout.h on device pointers, queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include "kernels/common/dropout_block.h"
#include "kernels/common/dropout_mask.h"

namespace ph::cuda {

// Element (r, c) of the block draws the mask bit dropout_keep(d, dropout_row_index(blk, r) + c)
// (kernels/common/dropout_block.h), as on the CPU.

// out = inp * mask / (1 - p). out may alias inp. p == 0 copies (or does nothing in place).
void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                     const DropoutBlock& blk, cudaStream_t stream);
// dinp = dout * mask / (1 - p), mask regenerated. dinp may alias dout. Overwrites dinp.
void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                      const DropoutBlock& blk, cudaStream_t stream);

}  // namespace ph::cuda
