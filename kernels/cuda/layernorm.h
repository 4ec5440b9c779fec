// LayerNorm over the last dimension on the GPU. Same contracts as
// kernels/cpu/layernorm.h on device pointers, queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

namespace ph::cuda {

// out[n,:] = (inp[n,:] - mean[n]) * rstd[n] * w + b, rstd[n] = 1 / sqrt(var[n] + eps). inp/out [N,
// C]; mean/rstd [N] are saved for backward. out may not alias inp. b may be null (no bias).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int N, int C, float eps, cudaStream_t stream);

// Accumulates dinp [N, C], dw [C], db [C] (+=); db may be null. Deterministic (no atomics).
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int N, int C,
                        cudaStream_t stream);

}  // namespace ph::cuda
