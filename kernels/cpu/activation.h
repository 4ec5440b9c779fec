// Element-wise activations (math in kernels/common/activations.h).
#pragma once
#include <cstddef>

namespace ph::cpu {

void gelu_forward(float* out, const float* inp, size_t n);
// dinp += gelu'(inp) * dout
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n);
void gelu_erf_forward(float* out, const float* inp, size_t n);
// dinp += gelu_erf'(inp) * dout
void gelu_erf_backward(float* dinp, const float* inp, const float* dout, size_t n);
void tanh_forward(float* out, const float* inp, size_t n);
// dinp += tanh'(inp) * dout
void tanh_backward(float* dinp, const float* inp, const float* dout, size_t n);
void relu_forward(float* out, const float* inp, size_t n);
// dinp += relu'(inp) * dout
void relu_backward(float* dinp, const float* inp, const float* dout, size_t n);

}  // namespace ph::cpu
