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

// The activations added with BERT share one kernel pair, instantiated per Op (f and its
// derivative df, both of the input).
struct GeluErfOp {
  static PH_HD float f(float x) { return gelu_erf(x); }
  static PH_HD float df(float x) { return gelu_erf_grad(x); }
};
struct TanhOp {
  static PH_HD float f(float x) { return tanh_act(x); }
  static PH_HD float df(float x) { return tanh_grad(x); }
};

template <typename Op>
__global__ void map_forward_kernel(float* out, const float* inp, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) out[i] = Op::f(inp[i]);
}

template <typename Op>
__global__ void map_backward_kernel(float* dinp, const float* inp, const float* dout, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) dinp[i] += Op::df(inp[i]) * dout[i];
}

namespace impl {

template <typename Op, typename Launch>
void map_forward(const Launch& launch, float* out, const float* inp, size_t n, LaunchShape s) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), map_forward_kernel<Op>,
         out, inp, n);
}

template <typename Op, typename Launch>
void map_backward(const Launch& launch, float* dinp, const float* inp, const float* dout, size_t n,
                  LaunchShape s) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), map_backward_kernel<Op>,
         dinp, inp, dout, n);
}

template <typename Launch>
void gelu_erf_forward(const Launch& launch, float* out, const float* inp, size_t n,
                      LaunchShape s = kActivationShape) {
  map_forward<GeluErfOp>(launch, out, inp, n, s);
}

template <typename Launch>
void gelu_erf_backward(const Launch& launch, float* dinp, const float* inp, const float* dout,
                       size_t n, LaunchShape s = kActivationShape) {
  map_backward<GeluErfOp>(launch, dinp, inp, dout, n, s);
}

template <typename Launch>
void tanh_forward(const Launch& launch, float* out, const float* inp, size_t n,
                  LaunchShape s = kActivationShape) {
  map_forward<TanhOp>(launch, out, inp, n, s);
}

template <typename Launch>
void tanh_backward(const Launch& launch, float* dinp, const float* inp, const float* dout, size_t n,
                   LaunchShape s = kActivationShape) {
  map_backward<TanhOp>(launch, dinp, inp, dout, n, s);
}

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
