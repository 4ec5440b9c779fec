// LayerNorm: launchers around kernels/cuda/layernorm_kernels.cuh.
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda/layernorm_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int N, int C, float eps, cudaStream_t stream) {
  impl::layernorm_forward(StreamLauncher{stream}, out, mean, rstd, inp, w, b, N, C, eps);
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int N, int C,
                        cudaStream_t stream) {
  impl::layernorm_backward(StreamLauncher{stream}, dinp, dw, db, dout, inp, w, mean, rstd, N, C);
}

}  // namespace ph::cuda
