// Inverted dropout on a [rows, cols] block of a larger unsharded tensor.
#pragma once
#include <cstdint>

#include "kernels/common/dropout_block.h"
#include "kernels/common/dropout_mask.h"

namespace ph::cpu {

// The mask bit of element (r, c) of the block is dropout_keep(d, dropout_row_index(blk, r) + c)
// (kernels/common/dropout_block.h).

// out = inp * mask / (1 - p). out may alias inp. p == 0 copies (or does nothing in place).
void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                     const DropoutBlock& blk);
// out = a + dropout(b): dropout_forward of b then residual_forward (kernels/cpu/residual.h), in
// one pass with the same roundings (bit for bit the two calls). b is not modified; out may
// alias a.
void dropout_residual_forward(float* out, const float* a, const float* b, int rows, int cols,
                              const DropoutSpec& d, const DropoutBlock& blk);
// dinp = dout * mask / (1 - p), mask regenerated. dinp may alias dout. Overwrites dinp.
void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                      const DropoutBlock& blk);

}  // namespace ph::cpu
