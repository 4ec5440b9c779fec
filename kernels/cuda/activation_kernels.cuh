// Element-wise activation kernels: grid-stride loops over a flat buffer, one element per
// thread per step (coalesced). out may alias inp.
#pragma once
#include <cstddef>

#include "kernels/common/activations.h"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kActivationShape{256, 1 << 16};

__global__ void gelu_forward_kernel(float* out, const float* inp, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) out[i] = gelu(inp[i]);
}

__global__ void gelu_backward_kernel(float* dinp, const float* inp, const float* dout, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) {
    dinp[i] += gelu_grad(inp[i]) * dout[i];
  }
}

__global__ void relu_forward_kernel(float* out, const float* inp, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) out[i] = relu(inp[i]);
}

__global__ void relu_backward_kernel(float* dinp, const float* inp, const float* dout, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) {
    dinp[i] += relu_grad(inp[i]) * dout[i];
  }
}

namespace impl {

template <typename Launch>
void gelu_forward(const Launch& launch, float* out, const float* inp, size_t n,
                  LaunchShape s = kActivationShape) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), gelu_forward_kernel, out,
         inp, n);
}

template <typename Launch>
void gelu_backward(const Launch& launch, float* dinp, const float* inp, const float* dout, size_t n,
                   LaunchShape s = kActivationShape) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), gelu_backward_kernel, dinp,
         inp, dout, n);
}

template <typename Launch>
void relu_forward(const Launch& launch, float* out, const float* inp, size_t n,
                  LaunchShape s = kActivationShape) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), relu_forward_kernel, out,
         inp, n);
}

template <typename Launch>
void relu_backward(const Launch& launch, float* dinp, const float* inp, const float* dout, size_t n,
                   LaunchShape s = kActivationShape) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), relu_backward_kernel, dinp,
         inp, dout, n);
}

}  // namespace impl
}  // namespace ph::cuda
