// Residual connection: the launcher around kernels/cuda/residual_kernels.cuh.
#include "kernels/cuda/residual.h"
#include "kernels/cuda/residual_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void residual_forward(float* out, const float* a, const float* b, size_t n, cudaStream_t stream) {
  impl::residual_forward(StreamLauncher{stream}, out, a, b, n);
}

}  // namespace ph::cuda
