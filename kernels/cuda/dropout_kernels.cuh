// Dropout kernels. dropout_keep draws element `index` as word index % 4 of the Philox block
// index / 4, so a thread takes one such group of four global indices: one Philox call for up
// to four elements of its row (a row of the block starts at any global index, so its first
// and last groups may be partial). Each element is read and written by the same thread: out
// may alias inp.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/dropout_block.h"
#include "kernels/common/dropout_group.h"
#include "kernels/common/dropout_mask.h"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kDropoutShape{256, 1 << 16};

// Philox groups a row of `cols` consecutive global indices can touch: ceil((cols + 3) / 4),
// reached when the row starts at the last word of a group.
__host__ __device__ inline int64_t dropout_groups_per_row(int cols) {
  return (static_cast<int64_t>(cols) + 6) / 4;
}

// Element (r, c) of the [rows, cols] block is global element dropout_row_index(blk, r) + c
// (kernels/common/dropout_block.h).
__global__ void dropout_kernel(float* out, const float* inp, int rows, int cols, DropoutSpec d,
                               DropoutBlock blk) {
  const int64_t per_row = dropout_groups_per_row(cols);
  const size_t total = static_cast<size_t>(rows) * static_cast<size_t>(per_row);
  const float scale = dropout_scale(d.p);
  for (size_t k = global_thread(); k < total; k += grid_threads()) {
    const int64_t r = static_cast<int64_t>(k / static_cast<size_t>(per_row));
    const int64_t j = static_cast<int64_t>(k % static_cast<size_t>(per_row));
    const uint64_t first = dropout_row_index(blk, r);
    const uint64_t end = first + static_cast<uint64_t>(cols);
    const uint64_t group = (first >> 2) + static_cast<uint64_t>(j);
    if (4 * group >= end) continue;
    const Philox4 bits = dropout_group_bits(d, group);
    const size_t row_offset = static_cast<size_t>(r) * static_cast<size_t>(cols);
    for (int w = 0; w < 4; ++w) {
      const uint64_t index = 4 * group + static_cast<uint64_t>(w);
      if (index < first || index >= end) continue;
      const size_t e = row_offset + static_cast<size_t>(index - first);
      out[e] = inp[e] * (dropout_keep_bits(d, bits.v[w]) ? scale : 0.0f);
    }
  }
}

__global__ void copy_kernel(float* out, const float* inp, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) out[i] = inp[i];
}

namespace impl {

template <typename Launch>
void dropout_forward(const Launch& launch, float* out, const float* inp, int rows, int cols,
                     const DropoutSpec& d, const DropoutBlock& blk, LaunchShape s = kDropoutShape) {
  if (rows <= 0 || cols <= 0) return;
  if (d.p > 0.0f) {
    const size_t groups =
        static_cast<size_t>(rows) * static_cast<size_t>(dropout_groups_per_row(cols));
    launch(dim3(grid_blocks(groups, s.threads, s.max_blocks)), dim3(s.threads), dropout_kernel, out,
           inp, rows, cols, d, blk);
  } else if (out != inp) {
    const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(cols);
    launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), copy_kernel, out, inp,
           n);
  }
}

}  // namespace impl
}  // namespace ph::cuda
