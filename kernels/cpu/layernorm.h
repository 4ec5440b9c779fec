// LayerNorm over the last dimension (eps = 1e-5).
#pragma once

namespace ph::cpu {

// out[n,:] = (inp[n,:] - mean[n]) * rstd[n] * w + b. inp/out [N, C]; mean/rstd [N] are saved
// for backward. out may not alias inp. b may be null (no bias).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int N, int C);

// Accumulates dinp [N, C], dw [C], db [C] (+=); db may be null. Deterministic for any
// thread count.
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int N, int C);

}  // namespace ph::cpu
