// Where a block of an activation sits in the unsharded tensor of the whole global batch, for
// dropout (kernels/common/dropout_mask.h draws element `index` of that tensor).
#pragma once
#include <cstdint>

#include "kernels/common/hostdevice.h"

namespace ph {

// A [rows, cols] block whose row r is position r % T of sample sample0 + r / T. Element (r, c)
// is element
//   ((sample0 + r / T) * T_max + r % T) * global_cols + col0 + c
// of the unsharded tensor. T_max is the configured maximum length (the row stride of a
// sample), so a mask never depends on the padded length T of one micro-batch. A plain matrix
// block is T = T_max = 1 with sample0 its first row.
//
// A packed block (rows not null) holds only some rows of the [B*T] layout above, in order: its
// row r is row rows[r] of that layout (the encoder-decoder drops the padding positions before
// its linear layers). rows lives where the kernels read (device memory on CUDA). A packed row
// therefore draws the same mask as it would in the padded layout.
struct DropoutBlock {
  int64_t sample0 = 0;
  int T = 1;
  int64_t T_max = 1;
  int64_t col0 = 0;
  int64_t global_cols = 0;
  const int32_t* rows = nullptr;
};

// The index of element (r, 0) of the block.
PH_HD uint64_t dropout_row_index(const DropoutBlock& b, int64_t r) {
  if (b.rows) r = b.rows[r];
  const int64_t sample = b.sample0 + r / b.T;
  return static_cast<uint64_t>((sample * b.T_max + r % b.T) * b.global_cols + b.col0);
}

}  // namespace ph
