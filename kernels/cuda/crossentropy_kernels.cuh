// Cross-entropy kernels: one block per row (grid-stride over rows), threads across the
// vocabulary with coalesced reads, block reductions in a fixed order (block_reduce.cuh).
// The fused kernels read a row once for its maximum and normaliser together (online softmax,
// kernels/common/online_softmax.h) and once more to write the gradient. A row's branch
// (ignored, invalid target) depends on its target only, and label smoothing (eps > 0) on a
// kernel argument: both uniform across the block. With eps = 0 the kernels evaluate the plain
// cross-entropy's expressions, unchanged; eps > 0 adds the sum of x - max over the row's real
// columns (read in the pass that already reads them) and finishes with
// kernels/common/label_smoothing.h, as the CPU backend does.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/common/label_smoothing.h"
#include "kernels/common/online_softmax.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kCrossEntropyRowShape{512, 1 << 16};   // block per row
inline constexpr LaunchShape kCrossEntropyLossShape{256, 1 << 16};  // thread per row

__device__ __forceinline__ float quiet_nan() {
  return __int_as_float(0x7fc00000);
}

__device__ __forceinline__ bool valid_target(int32_t t, int V) {
  return t >= 0 && t < V;
}

// The real (unpadded) columns of [v0, v0 + Vl) are the local columns [0, real_local(...)).
__host__ __device__ inline int real_local(int Vl, int v0, int V) {
  const int r = V - v0;
  return r < 0 ? 0 : (r > Vl ? Vl : r);
}

__device__ inline OnlineSoftmax block_row_softmax(const float* x, int V) {
  OnlineSoftmax s;
  for (int j = thread_in_block(); j < V; j += static_cast<int>(blockDim.x)) {
    online_softmax_add(s, x[j]);
  }
  return block_reduce_softmax(s);
}

__global__ void crossentropy_forward_kernel(float* __restrict__ losses,
                                            const float* __restrict__ logits,
                                            const int32_t* __restrict__ targets, int N, int V,
                                            int Vp, int ignore_index, float smoothing) {
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const int32_t t = targets[n];
    if (t == ignore_index || !valid_target(t, V)) {
      if (thread_in_block() == 0) losses[n] = t == ignore_index ? 0.0f : quiet_nan();
      continue;
    }
    const float* x = logits + static_cast<size_t>(n) * Vp;
    const OnlineSoftmax s = block_row_softmax(x, V);
    if (smoothing > 0.0f) {
      float shifted = 0.0f;  // sum of x_j - max
      for (int j = thread_in_block(); j < V; j += static_cast<int>(blockDim.x)) {
        shifted += x[j] - s.max;
      }
      shifted = block_reduce(shifted, SumOp{}, 0.0f);
      if (thread_in_block() == 0) {
        const float log_sum = logf(s.sum);
        losses[n] = smoothed_loss(log_sum - (x[t] - s.max), log_sum,
                                  shifted / static_cast<float>(V), smoothing);
      }
    } else if (thread_in_block() == 0) {
      losses[n] = logf(s.sum) - (x[t] - s.max);
    }
  }
}

__global__ void crossentropy_fused_kernel(float* x_to_dx, float* __restrict__ losses,
                                          const int32_t* __restrict__ targets, int N, int V, int Vp,
                                          int ignore_index, float smoothing, float dloss) {
  const int threads = static_cast<int>(blockDim.x);
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    float* x = x_to_dx + static_cast<size_t>(n) * Vp;
    const int32_t t = targets[n];
    if (t == ignore_index || !valid_target(t, V)) {
      if (thread_in_block() == 0) losses[n] = t == ignore_index ? 0.0f : quiet_nan();
      for (int j = thread_in_block(); j < Vp; j += threads) x[j] = 0.0f;
      continue;
    }
    // Read before block_row_softmax: its barriers order this read before any write of x.
    const float xt = thread_in_block() == 0 ? x[t] : 0.0f;
    const OnlineSoftmax s = block_row_softmax(x, V);
    const float inv = 1.0f / s.sum;
    const float g = inv * dloss;
    if (smoothing > 0.0f) {
      // Each element is read (into the shifted sum and the gradient), then written, by the
      // same thread.
      const float uniform = smoothing_uniform(smoothing, V, dloss);
      const float target_weight = 1.0f - smoothing;
      float shifted = 0.0f;
      for (int j = thread_in_block(); j < Vp; j += threads) {
        float d = 0.0f;
        if (j < V) {
          const float xj = x[j];
          shifted += xj - s.max;
          const float e = expf(xj - s.max);
          d = j == t ? (e * inv - target_weight) * dloss - uniform : e * g - uniform;
        }
        x[j] = d;
      }
      shifted = block_reduce(shifted, SumOp{}, 0.0f);
      if (thread_in_block() == 0) {
        const float log_sum = logf(s.sum);
        losses[n] = smoothed_loss(log_sum - (xt - s.max), log_sum, shifted / static_cast<float>(V),
                                  smoothing);
      }
      continue;
    }
    for (int j = thread_in_block(); j < Vp; j += threads) {
      float d = 0.0f;
      if (j < V) {
        const float e = expf(x[j] - s.max);
        d = j == t ? (e * inv - 1.0f) * dloss : e * g;
      }
      x[j] = d;
    }
    if (thread_in_block() == 0) losses[n] = logf(s.sum) - (xt - s.max);
  }
}

__global__ void vp_crossentropy_max_kernel(float* __restrict__ row_max,
                                           const float* __restrict__ logits, int N, int Vl, int R) {
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const float* x = logits + static_cast<size_t>(n) * Vl;
    float m = -INFINITY;
    for (int j = thread_in_block(); j < R; j += static_cast<int>(blockDim.x)) m = fmaxf(m, x[j]);
    m = block_reduce(m, MaxOp{}, -INFINITY);
    if (thread_in_block() == 0) row_max[n] = m;
  }
}

// sum_logits may be null (no label smoothing): then only sum_exp and target_logit.
__global__ void vp_crossentropy_sums_kernel(
    float* __restrict__ sum_exp, float* __restrict__ target_logit, float* __restrict__ sum_logits,
    const float* __restrict__ logits, const float* __restrict__ row_max,
    const int32_t* __restrict__ targets, int N, int Vl, int v0, int R, int ignore_index) {
  const bool shifted_sum = sum_logits != nullptr;
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const float* x = logits + static_cast<size_t>(n) * Vl;
    const float mx = row_max[n];
    float sum = 0.0f, shifted = 0.0f;
    for (int j = thread_in_block(); j < R; j += static_cast<int>(blockDim.x)) {
      sum += expf(x[j] - mx);
      if (shifted_sum) shifted += x[j] - mx;
    }
    sum = block_reduce(sum, SumOp{}, 0.0f);
    if (shifted_sum) shifted = block_reduce(shifted, SumOp{}, 0.0f);
    if (thread_in_block() == 0) {
      sum_exp[n] = sum;
      const int32_t t = targets[n];
      const bool here = t != ignore_index && t >= v0 && t < v0 + R;
      target_logit[n] = here ? x[t - v0] : 0.0f;
      if (shifted_sum) sum_logits[n] = shifted;
    }
  }
}

// The loss of a row from the reduced sums; sum_logits is the row's reduced sum of x - max, read
// only with smoothing > 0.
__device__ __forceinline__ float vp_loss(int32_t t, int V, int ignore_index, float row_max,
                                         float sum_exp, float target_logit, const float* sum_logits,
                                         int n, float smoothing) {
  if (t == ignore_index) return 0.0f;
  if (!valid_target(t, V)) return quiet_nan();
  if (smoothing > 0.0f) {
    const float log_sum = logf(sum_exp);
    return smoothed_loss(log_sum + row_max - target_logit, log_sum,
                         sum_logits[n] / static_cast<float>(V), smoothing);
  }
  return logf(sum_exp) + row_max - target_logit;
}

// Losses only (no dlogits): one thread per row.
__global__ void vp_crossentropy_loss_kernel(float* __restrict__ losses,
                                            const float* __restrict__ row_max,
                                            const float* __restrict__ sum_exp,
                                            const float* __restrict__ target_logit,
                                            const float* __restrict__ sum_logits,
                                            const int32_t* __restrict__ targets, int N, int V,
                                            int ignore_index, float smoothing) {
  for (size_t n = global_thread(); n < static_cast<size_t>(N); n += grid_threads()) {
    losses[n] = vp_loss(targets[n], V, ignore_index, row_max[n], sum_exp[n], target_logit[n],
                        sum_logits, static_cast<int>(n), smoothing);
  }
}

// Losses and dlogits (which may alias logits: each element is read, then written, by the
// same thread).
__global__ void vp_crossentropy_finish_kernel(
    float* __restrict__ losses, float* dlogits, const float* logits,
    const float* __restrict__ row_max, const float* __restrict__ sum_exp,
    const float* __restrict__ target_logit, const float* __restrict__ sum_logits,
    const int32_t* __restrict__ targets, int N, int Vl, int v0, int V, int R, int ignore_index,
    float smoothing, float dloss) {
  const int threads = static_cast<int>(blockDim.x);
  const bool smoothed = smoothing > 0.0f;
  const float uniform = smoothed ? smoothing_uniform(smoothing, V, dloss) : 0.0f;
  const float target_dloss = (1.0f - smoothing) * dloss;
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const int32_t t = targets[n];
    if (thread_in_block() == 0) {
      losses[n] = vp_loss(t, V, ignore_index, row_max[n], sum_exp[n], target_logit[n], sum_logits,
                          n, smoothing);
    }
    const float* x = logits + static_cast<size_t>(n) * Vl;
    float* d = dlogits + static_cast<size_t>(n) * Vl;
    if (t == ignore_index || !valid_target(t, V)) {
      for (int j = thread_in_block(); j < Vl; j += threads) d[j] = 0.0f;
      continue;
    }
    const float mx = row_max[n];
    const float g = dloss / sum_exp[n];
    const int local_t = t - v0;  // in [0, R) when this rank holds the target
    if (smoothed) {
      for (int j = thread_in_block(); j < Vl; j += threads) {
        float v = 0.0f;
        if (j < R) {
          v = expf(x[j] - mx) * g - uniform;
          if (j == local_t) v -= target_dloss;
        }
        d[j] = v;
      }
      continue;
    }
    for (int j = thread_in_block(); j < Vl; j += threads) {
      float v = 0.0f;
      if (j < R) {
        v = expf(x[j] - mx) * g;
        if (j == local_t) v -= dloss;
      }
      d[j] = v;
    }
  }
}

namespace impl {

inline dim3 crossentropy_row_grid(int N, LaunchShape s) {
  return dim3(grid_blocks(N, 1, s.max_blocks));
}

template <typename Launch>
void crossentropy_forward(const Launch& launch, float* losses, const float* logits,
                          const int32_t* targets, int N, int V, int Vp, int ignore_index,
                          float smoothing, LaunchShape s = kCrossEntropyRowShape) {
  if (N <= 0) return;
  launch(crossentropy_row_grid(N, s), dim3(s.threads), crossentropy_forward_kernel, losses, logits,
         targets, N, V, Vp, ignore_index, smoothing);
}

template <typename Launch>
void crossentropy_fused(const Launch& launch, float* logits_to_dlogits, float* losses,
                        const int32_t* targets, int N, int V, int Vp, int ignore_index,
                        float smoothing, float dloss, LaunchShape s = kCrossEntropyRowShape) {
  if (N <= 0) return;
  launch(crossentropy_row_grid(N, s), dim3(s.threads), crossentropy_fused_kernel, logits_to_dlogits,
         losses, targets, N, V, Vp, ignore_index, smoothing, dloss);
}

template <typename Launch>
void vp_crossentropy_max(const Launch& launch, float* row_max, const float* logits, int N, int Vl,
                         int v0, int V, LaunchShape s = kCrossEntropyRowShape) {
  if (N <= 0) return;
  launch(crossentropy_row_grid(N, s), dim3(s.threads), vp_crossentropy_max_kernel, row_max, logits,
         N, Vl, real_local(Vl, v0, V));
}

template <typename Launch>
void vp_crossentropy_sums(const Launch& launch, float* sum_exp, float* target_logit,
                          float* sum_logits, const float* logits, const float* row_max,
                          const int32_t* targets, int N, int Vl, int v0, int V, int ignore_index,
                          LaunchShape s = kCrossEntropyRowShape) {
  if (N <= 0) return;
  launch(crossentropy_row_grid(N, s), dim3(s.threads), vp_crossentropy_sums_kernel, sum_exp,
         target_logit, sum_logits, logits, row_max, targets, N, Vl, v0, real_local(Vl, v0, V),
         ignore_index);
}

template <typename Launch>
void vp_crossentropy_finish(const Launch& launch, float* losses, float* dlogits,
                            const float* logits, const float* row_max, const float* sum_exp,
                            const float* target_logit, const float* sum_logits,
                            const int32_t* targets, int N, int Vl, int v0, int V, int ignore_index,
                            float smoothing, float dloss, LaunchShape rows = kCrossEntropyRowShape,
                            LaunchShape loss_only = kCrossEntropyLossShape) {
  if (N <= 0) return;
  if (dlogits) {
    launch(crossentropy_row_grid(N, rows), dim3(rows.threads), vp_crossentropy_finish_kernel,
           losses, dlogits, logits, row_max, sum_exp, target_logit, sum_logits, targets, N, Vl, v0,
           V, real_local(Vl, v0, V), ignore_index, smoothing, dloss);
  } else {
    launch(dim3(grid_blocks(N, loss_only.threads, loss_only.max_blocks)), dim3(loss_only.threads),
           vp_crossentropy_loss_kernel, losses, row_max, sum_exp, target_logit, sum_logits, targets,
           N, V, ignore_index, smoothing);
  }
}

}  // namespace impl
}  // namespace ph::cuda
