// Optimizer: launchers around kernels/cuda/optimizer_kernels.cuh.
#include "kernels/cuda/optimizer.h"
#include "kernels/cuda/optimizer_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                  const AdamWParams& a, cudaStream_t stream) {
  impl::adamw_update(StreamLauncher{stream}, params, grads, m, v, n, a);
}

size_t sum_squares_scratch_size(size_t n) {
  return impl::sum_squares_blocks(n);
}

void sum_squares(double* result, const float* x, size_t n, double* scratch, cudaStream_t stream) {
  impl::sum_squares(StreamLauncher{stream}, result, x, n, scratch);
}

void all_finite(int* result, const float* x, size_t n, cudaStream_t stream) {
  impl::all_finite(StreamLauncher{stream}, result, x, n);
}

}  // namespace ph::cuda
