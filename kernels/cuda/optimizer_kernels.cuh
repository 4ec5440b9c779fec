// Optimizer kernels: AdamW as a grid-stride element-wise pass (common/adamw.h per element);
// the sum of squares as per-thread double sums over a grid-stride range, a block reduction
// per block into scratch, and a final single-block pass over the partial sums (the grid
// depends on n only, so the additions happen in the same order on every run and device);
// the finiteness check as a block vote (__syncthreads_or) that clears a flag set beforehand.
#pragma once
#include <cstddef>

#include "kernels/common/adamw.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kAdamWShape{256, 1 << 16};
// max_blocks bounds the partial sums, hence the scratch of sum_squares.
inline constexpr LaunchShape kSumSquaresShape{512, 1024};
inline constexpr LaunchShape kAllFiniteShape{256, 1 << 16};

__global__ void adamw_kernel(float* __restrict__ params, const float* __restrict__ grads,
                             float* __restrict__ m, float* __restrict__ v, size_t n,
                             AdamWParams a) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) {
    float p = params[i], mi = m[i], vi = v[i];
    adamw_element(p, grads[i], mi, vi, a);
    params[i] = p;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void sum_squares_partial_kernel(double* __restrict__ partial,
                                           const float* __restrict__ x, size_t n) {
  double s = 0.0;
  for (size_t i = global_thread(); i < n; i += grid_threads()) {
    const double xi = static_cast<double>(x[i]);
    s += xi * xi;
  }
  s = block_reduce(s, SumOp{}, 0.0);
  if (thread_in_block() == 0) partial[blockIdx.x] = s;
}

__global__ void sum_squares_final_kernel(double* __restrict__ result,
                                         const double* __restrict__ partial, int count) {
  double s = 0.0;
  for (int i = thread_in_block(); i < count; i += static_cast<int>(blockDim.x)) s += partial[i];
  s = block_reduce(s, SumOp{}, 0.0);
  if (thread_in_block() == 0) *result = s;
}

__global__ void set_flag_kernel(int* flag, int value) {
  if (global_thread() == 0) *flag = value;
}

// Clears *result when some x[i] has an exponent of all ones (Inf or NaN).
__global__ void all_finite_kernel(int* __restrict__ result, const float* __restrict__ x, size_t n) {
  int bad = 0;
  for (size_t i = global_thread(); i < n; i += grid_threads()) {
    bad |= (__float_as_uint(x[i]) & 0x7f800000u) == 0x7f800000u;
  }
  if (__syncthreads_or(bad) && thread_in_block() == 0) *result = 0;
}

namespace impl {

template <typename Launch>
void adamw_update(const Launch& launch, float* params, const float* grads, float* m, float* v,
                  size_t n, const AdamWParams& a, LaunchShape s = kAdamWShape) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), adamw_kernel, params,
         grads, m, v, n, a);
}

// Partial sums (= doubles of scratch) of sum_squares for n elements: 0 when n is 0.
inline size_t sum_squares_blocks(size_t n, LaunchShape s = kSumSquaresShape) {
  return n == 0 ? 0 : grid_blocks(n, s.threads, s.max_blocks);
}

template <typename Launch>
void sum_squares(const Launch& launch, double* result, const float* x, size_t n, double* scratch,
                 LaunchShape s = kSumSquaresShape) {
  const size_t blocks = sum_squares_blocks(n, s);
  if (blocks > 0) {
    launch(dim3(static_cast<unsigned>(blocks)), dim3(s.threads), sum_squares_partial_kernel,
           scratch, x, n);
  }
  launch(dim3(1), dim3(s.threads), sum_squares_final_kernel, result,
         static_cast<const double*>(scratch), static_cast<int>(blocks));
}

template <typename Launch>
void all_finite(const Launch& launch, int* result, const float* x, size_t n,
                LaunchShape s = kAllFiniteShape) {
  launch(dim3(1), dim3(kWarpSize), set_flag_kernel, result, 1);
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), all_finite_kernel, result,
         x, n);
}

}  // namespace impl
}  // namespace ph::cuda
