// LayerNorm kernels.
//
// Forward and the dinp part of backward: one warp per row (grid-stride over rows), lanes
// across the channels, row sums by warp butterfly (__shfl_xor_sync); two passes over the row
// as in the CPU backend (mean, then the variance of centred values).
//
// dw, db: column sums over all N rows, without atomics. A block owns a tile of 32 channels
// (grid-stride over tiles); warp k of the block sums rows k, k + warps, ... for those channels
// (each warp reads 128 contiguous bytes of a row), then the warps' partial sums are added in
// warp order through shared memory: a fixed order for a given block size.
#pragma once
#include <cmath>
#include <cstddef>

#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kLayerNormRowShape{256, 1 << 16};    // warp per row
inline constexpr LaunchShape kLayerNormParamShape{512, 1 << 16};  // 32 channels per block

__global__ void layernorm_forward_kernel(float* __restrict__ out, float* __restrict__ mean,
                                         float* __restrict__ rstd, const float* __restrict__ inp,
                                         const float* __restrict__ w, const float* __restrict__ b,
                                         int N, int C, float eps) {
  const int lane = lane_id();
  const int stride = static_cast<int>(gridDim.x) * warps_per_block();
  for (int n = static_cast<int>(blockIdx.x) * warps_per_block() + warp_id(); n < N; n += stride) {
    const float* x = inp + static_cast<size_t>(n) * C;
    float* y = out + static_cast<size_t>(n) * C;
    float sum = 0.0f;
    for (int c = lane; c < C; c += kWarpSize) sum += x[c];
    const float m = warp_reduce(sum, SumOp{}) / static_cast<float>(C);
    float sq = 0.0f;
    for (int c = lane; c < C; c += kWarpSize) sq += (x[c] - m) * (x[c] - m);
    const float s = 1.0f / sqrtf(warp_reduce(sq, SumOp{}) / static_cast<float>(C) + eps);
    for (int c = lane; c < C; c += kWarpSize) {
      const float v = (x[c] - m) * s * w[c];
      y[c] = b ? v + b[c] : v;
    }
    if (lane == 0) {
      mean[n] = m;
      rstd[n] = s;
    }
  }
}

// dx = s (g - mean(g) - xhat mean(g xhat)) with xhat = (x - m) s and g = w dy, accumulated.
__global__ void layernorm_backward_input_kernel(float* __restrict__ dinp,
                                                const float* __restrict__ dout,
                                                const float* __restrict__ inp,
                                                const float* __restrict__ w,
                                                const float* __restrict__ mean,
                                                const float* __restrict__ rstd, int N, int C) {
  const int lane = lane_id();
  const int stride = static_cast<int>(gridDim.x) * warps_per_block();
  for (int n = static_cast<int>(blockIdx.x) * warps_per_block() + warp_id(); n < N; n += stride) {
    const float* x = inp + static_cast<size_t>(n) * C;
    const float* dy = dout + static_cast<size_t>(n) * C;
    float* dx = dinp + static_cast<size_t>(n) * C;
    const float m = mean[n], s = rstd[n];
    float sum_g = 0.0f, sum_gx = 0.0f;
    for (int c = lane; c < C; c += kWarpSize) {
      const float g = w[c] * dy[c];
      sum_g += g;
      sum_gx += g * (x[c] - m) * s;
    }
    const float mean_g = warp_reduce(sum_g, SumOp{}) / static_cast<float>(C);
    const float mean_gx = warp_reduce(sum_gx, SumOp{}) / static_cast<float>(C);
    for (int c = lane; c < C; c += kWarpSize) {
      const float xhat = (x[c] - m) * s;
      dx[c] += s * (w[c] * dy[c] - mean_g - xhat * mean_gx);
    }
  }
}

__global__ void layernorm_backward_params_kernel(float* __restrict__ dw, float* __restrict__ db,
                                                 const float* __restrict__ dout,
                                                 const float* __restrict__ inp,
                                                 const float* __restrict__ mean,
                                                 const float* __restrict__ rstd, int N, int C) {
  __shared__ float part_w[kMaxThreads];  // [warp][lane]
  __shared__ float part_b[kMaxThreads];
  const int lane = lane_id(), warp = warp_id(), warps = warps_per_block();
  const int tiles = (C + kWarpSize - 1) / kWarpSize;
  for (int tile = static_cast<int>(blockIdx.x); tile < tiles; tile += static_cast<int>(gridDim.x)) {
    const int c = tile * kWarpSize + lane;
    float acc_w = 0.0f, acc_b = 0.0f;
    if (c < C) {
      for (int n = warp; n < N; n += warps) {
        const size_t i = static_cast<size_t>(n) * C + c;
        acc_w += dout[i] * ((inp[i] - mean[n]) * rstd[n]);
        acc_b += dout[i];
      }
    }
    __syncthreads();  // the previous tile's partial sums have been read
    part_w[thread_in_block()] = acc_w;
    part_b[thread_in_block()] = acc_b;
    __syncthreads();
    if (warp == 0 && c < C) {
      float sum_w = 0.0f, sum_b = 0.0f;
      for (int k = 0; k < warps; ++k) {
        sum_w += part_w[k * kWarpSize + lane];
        sum_b += part_b[k * kWarpSize + lane];
      }
      dw[c] += sum_w;
      if (db) db[c] += sum_b;
    }
  }
}

namespace impl {

inline unsigned layernorm_row_blocks(int N, LaunchShape s) {
  return grid_blocks(N, s.threads / kWarpSize, s.max_blocks);
}

template <typename Launch>
void layernorm_forward(const Launch& launch, float* out, float* mean, float* rstd, const float* inp,
                       const float* w, const float* b, int N, int C, float eps = 1e-5f,
                       LaunchShape s = kLayerNormRowShape) {
  if (N <= 0 || C <= 0) return;
  launch(dim3(layernorm_row_blocks(N, s)), dim3(s.threads), layernorm_forward_kernel, out, mean,
         rstd, inp, w, b, N, C, eps);
}

template <typename Launch>
void layernorm_backward(const Launch& launch, float* dinp, float* dw, float* db, const float* dout,
                        const float* inp, const float* w, const float* mean, const float* rstd,
                        int N, int C, LaunchShape rows = kLayerNormRowShape,
                        LaunchShape params = kLayerNormParamShape) {
  if (N <= 0 || C <= 0) return;
  launch(dim3(layernorm_row_blocks(N, rows)), dim3(rows.threads), layernorm_backward_input_kernel,
         dinp, dout, inp, w, mean, rstd, N, C);
  const size_t tiles = static_cast<size_t>((C + kWarpSize - 1) / kWarpSize);
  launch(dim3(grid_blocks(tiles, 1, params.max_blocks)), dim3(params.threads),
         layernorm_backward_params_kernel, dw, db, dout, inp, mean, rstd, N, C);
}

}  // namespace impl
}  // namespace ph::cuda
