// Element-wise activations on the GPU (math in kernels/common/activations.h). Same contracts
// as kernels/cpu/activation.h on device pointers, queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

namespace ph::cuda {

void gelu_forward(float* out, const float* inp, size_t n, cudaStream_t stream);
// dinp += gelu'(inp) * dout
void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n, cudaStream_t stream);
void gelu_erf_forward(float* out, const float* inp, size_t n, cudaStream_t stream);
// dinp += gelu_erf'(inp) * dout
void gelu_erf_backward(float* dinp, const float* inp, const float* dout, size_t n,
                       cudaStream_t stream);
void tanh_forward(float* out, const float* inp, size_t n, cudaStream_t stream);
// dinp += tanh'(inp) * dout
void tanh_backward(float* dinp, const float* inp, const float* dout, size_t n, cudaStream_t stream);
void relu_forward(float* out, const float* inp, size_t n, cudaStream_t stream);
// dinp += relu'(inp) * dout
void relu_backward(float* dinp, const float* inp, const float* dout, size_t n, cudaStream_t stream);

}  // namespace ph::cuda
