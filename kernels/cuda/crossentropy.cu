// Cross-entropy: launchers around kernels/cuda/crossentropy_kernels.cuh.
#include "kernels/cuda/crossentropy.h"
#include "kernels/cuda/crossentropy_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                          int Vp, int ignore_index, float smoothing, cudaStream_t stream) {
  impl::crossentropy_forward(StreamLauncher{stream}, losses, logits, targets, N, V, Vp,
                             ignore_index, smoothing);
}

void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                        int V, int Vp, int ignore_index, float smoothing, float dloss,
                        cudaStream_t stream) {
  impl::crossentropy_fused(StreamLauncher{stream}, logits_to_dlogits, losses, targets, N, V, Vp,
                           ignore_index, smoothing, dloss);
}

void vp_crossentropy_max(float* row_max, const float* logits, int N, int Vl, int v0, int V,
                         cudaStream_t stream) {
  impl::vp_crossentropy_max(StreamLauncher{stream}, row_max, logits, N, Vl, v0, V);
}

void vp_crossentropy_sums(float* sum_exp, float* target_logit, float* sum_logits,
                          const float* logits, const float* row_max, const int32_t* targets, int N,
                          int Vl, int v0, int V, int ignore_index, cudaStream_t stream) {
  impl::vp_crossentropy_sums(StreamLauncher{stream}, sum_exp, target_logit, sum_logits, logits,
                             row_max, targets, N, Vl, v0, V, ignore_index);
}

void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                            const float* row_max, const float* sum_exp, const float* target_logit,
                            const float* sum_logits, const int32_t* targets, int N, int Vl, int v0,
                            int V, int ignore_index, float smoothing, float dloss,
                            cudaStream_t stream) {
  impl::vp_crossentropy_finish(StreamLauncher{stream}, losses, dlogits, logits, row_max, sum_exp,
                               target_logit, sum_logits, targets, N, Vl, v0, V, ignore_index,
                               smoothing, dloss);
}

}  // namespace ph::cuda
