// Residual kernel: a grid-stride loop over a flat buffer. No __restrict__: out may alias a or b.
#pragma once
#include <cstddef>

#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kResidualShape{256, 1 << 16};

__global__ void residual_forward_kernel(float* out, const float* a, const float* b, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) out[i] = a[i] + b[i];
}

namespace impl {

template <typename Launch>
void residual_forward(const Launch& launch, float* out, const float* a, const float* b, size_t n,
                      LaunchShape s = kResidualShape) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), residual_forward_kernel,
         out, a, b, n);
}

}  // namespace impl
}  // namespace ph::cuda
