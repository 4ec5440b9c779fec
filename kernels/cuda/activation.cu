// Element-wise activations: launchers around kernels/cuda/activation_kernels.cuh.
#include "kernels/cuda/activation.h"
#include "kernels/cuda/activation_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void gelu_forward(float* out, const float* inp, size_t n, cudaStream_t stream) {
  impl::gelu_forward(StreamLauncher{stream}, out, inp, n);
}

void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n,
                   cudaStream_t stream) {
  impl::gelu_backward(StreamLauncher{stream}, dinp, inp, dout, n);
}

void gelu_erf_forward(float* out, const float* inp, size_t n, cudaStream_t stream) {
  impl::gelu_erf_forward(StreamLauncher{stream}, out, inp, n);
}

void gelu_erf_backward(float* dinp, const float* inp, const float* dout, size_t n,
                       cudaStream_t stream) {
  impl::gelu_erf_backward(StreamLauncher{stream}, dinp, inp, dout, n);
}

void tanh_forward(float* out, const float* inp, size_t n, cudaStream_t stream) {
  impl::tanh_forward(StreamLauncher{stream}, out, inp, n);
}

void tanh_backward(float* dinp, const float* inp, const float* dout, size_t n,
                   cudaStream_t stream) {
  impl::tanh_backward(StreamLauncher{stream}, dinp, inp, dout, n);
}

void relu_forward(float* out, const float* inp, size_t n, cudaStream_t stream) {
  impl::relu_forward(StreamLauncher{stream}, out, inp, n);
}

void relu_backward(float* dinp, const float* inp, const float* dout, size_t n,
                   cudaStream_t stream) {
  impl::relu_backward(StreamLauncher{stream}, dinp, inp, dout, n);
}

}  // namespace ph::cuda
