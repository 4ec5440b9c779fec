// Softmax + cross-entropy over the vocabulary on the GPU, fused and vocab-parallel, with
// optional label smoothing. Same contracts as kernels/cpu/crossentropy.h on device pointers,
// queued on `stream`: padded columns (>= V) never receive probability, a target equal to
// ignore_index gives loss 0 and no gradient, a target outside [0, V) gives a NaN loss and no
// gradient; smoothing eps > 0 makes the target distribution (1 - eps) onehot + eps / V
// (kernels/common/label_smoothing.h), eps = 0 is the plain cross-entropy, computed exactly as
// without smoothing.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ph::cuda {

// logits [N, Vp], targets [N], losses [N].
void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                          int Vp, int ignore_index, float smoothing, cudaStream_t stream);

// Writes losses [N] and overwrites logits with dlogits = (p - q) * dloss (0 on padded columns
// and ignored rows).
void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                        int V, int Vp, int ignore_index, float smoothing, float dloss,
                        cudaStream_t stream);

// Vocab-parallel phases: this rank holds padded-vocabulary columns [v0, v0 + Vl); the caller
// all-reduces between phases (MAX after phase 1, SUM of the outputs after phase 2). sum_logits
// may be null (no smoothing) in phase 2, and is read in phase 3 only when smoothing > 0.
void vp_crossentropy_max(float* row_max, const float* logits, int N, int Vl, int v0, int V,
                         cudaStream_t stream);
void vp_crossentropy_sums(float* sum_exp, float* target_logit, float* sum_logits,
                          const float* logits, const float* row_max, const int32_t* targets, int N,
                          int Vl, int v0, int V, int ignore_index, cudaStream_t stream);
// dlogits may be null (losses only) or alias logits.
void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                            const float* row_max, const float* sum_exp, const float* target_logit,
                            const float* sum_logits, const int32_t* targets, int N, int Vl, int v0,
                            int V, int ignore_index, float smoothing, float dloss,
                            cudaStream_t stream);

}  // namespace ph::cuda
