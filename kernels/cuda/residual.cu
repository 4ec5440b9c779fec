// Residual connection: launchers around kernels/cuda/residual_kernels.cuh.
#include "kernels/cuda/residual.h"
#include "kernels/cuda/residual_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void residual_forward(float* out, const float* a, const float* b, size_t n, cudaStream_t stream) {
  impl::residual_forward(StreamLauncher{stream}, out, a, b, n);
}

void residual_backward(float* da, float* db, const float* dout, size_t n, cudaStream_t stream) {
  impl::residual_backward(StreamLauncher{stream}, da, db, dout, n);
}

}  // namespace ph::cuda
