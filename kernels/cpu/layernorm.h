// LayerNorm over the last dimension.
#pragma once

namespace ph::cpu {

// out[n,:] = (inp[n,:] - mean[n]) * rstd[n] * w + b with rstd[n] = 1 / sqrt(var[n] + eps)
// (PyTorch's default eps 1e-5; BERT's 1e-12). inp/out [N, C]; mean/rstd [N] are saved for
// backward. out may not alias inp. b may be null (no bias).
void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int N, int C, float eps = 1e-5f);

// Accumulates dinp [N, C], dw [C], db [C] (+=); db may be null. Deterministic for any
// thread count.
// accumulate = false overwrites dinp instead (bit for bit zeroing it first); dw, db accumulate.
void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int N, int C,
                        bool accumulate = true);

}  // namespace ph::cpu
