// Inverted dropout on a [rows, cols] block of a larger unsharded tensor.
#pragma once
#include <cstdint>

#include "kernels/common/dropout_mask.h"

namespace ph::cpu {

// Element (r, c) of this block is element (row0 + r, col0 + c) of the unsharded tensor with
// row length global_cols; its mask bit is dropout_keep(d, (row0 + r) * global_cols + col0 + c).
struct DropoutBlock {
  int64_t row0 = 0;
  int64_t col0 = 0;
  int64_t global_cols = 0;
};

// out = inp * mask / (1 - p). out may alias inp. p == 0 copies (or does nothing in place).
void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                     const DropoutBlock& blk);
// dinp = dout * mask / (1 - p), mask regenerated. dinp may alias dout. Overwrites dinp.
void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                      const DropoutBlock& blk);

}  // namespace ph::cpu
