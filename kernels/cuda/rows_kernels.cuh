// Row gather and scatter-add kernels (kernels/cuda/rows.h): a block per output row (grid-stride
// over rows), its threads across the C columns, so a warp reads and writes consecutive floats.
// scatter_add_rows needs distinct rows: each row of dinp is then updated by one block, once per
// element, without atomics (deterministic, and bit for bit the CPU's single addition).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kRowsShape{256, 1 << 16};  // a block per row

__global__ void gather_rows_kernel(float* __restrict__ out, const float* __restrict__ inp,
                                   const int32_t* __restrict__ rows, int n, int C) {
  for (int i = static_cast<int>(blockIdx.x); i < n; i += static_cast<int>(gridDim.x)) {
    const int32_t row = rows[i];  // negative: a row of zeros
    float* dst = out + static_cast<size_t>(i) * C;
    if (row < 0) {
      for (int c = thread_in_block(); c < C; c += static_cast<int>(blockDim.x)) dst[c] = 0.0f;
      continue;
    }
    const float* src = inp + static_cast<size_t>(row) * C;
    for (int c = thread_in_block(); c < C; c += static_cast<int>(blockDim.x)) dst[c] = src[c];
  }
}

__global__ void scatter_add_rows_kernel(float* __restrict__ dinp, const float* __restrict__ dout,
                                        const int32_t* __restrict__ rows, int n, int C) {
  for (int i = static_cast<int>(blockIdx.x); i < n; i += static_cast<int>(gridDim.x)) {
    const float* src = dout + static_cast<size_t>(i) * C;
    float* dst = dinp + static_cast<size_t>(rows[i]) * C;
    for (int c = thread_in_block(); c < C; c += static_cast<int>(blockDim.x)) dst[c] += src[c];
  }
}

namespace impl {

template <typename Launch>
void gather_rows(const Launch& launch, float* out, const float* inp, const int32_t* rows, int n,
                 int C, LaunchShape s = kRowsShape) {
  if (n <= 0 || C <= 0) return;
  launch(dim3(grid_blocks(static_cast<size_t>(n), 1, s.max_blocks)), dim3(s.threads),
         gather_rows_kernel, out, inp, rows, n, C);
}

template <typename Launch>
void scatter_add_rows(const Launch& launch, float* dinp, const float* dout, const int32_t* rows,
                      int n, int C, LaunchShape s = kRowsShape) {
  if (n <= 0 || C <= 0) return;
  launch(dim3(grid_blocks(static_cast<size_t>(n), 1, s.max_blocks)), dim3(s.threads),
         scatter_add_rows_kernel, dinp, dout, rows, n, C);
}

}  // namespace impl
}  // namespace ph::cuda
