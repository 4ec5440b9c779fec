// Token + position embedding on the GPU. Same contracts as kernels/cpu/embedding.h on device
// pointers, queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ph::cuda {

// out[b,t,:] = scale * wte[tokens[b,t] - vocab_start, :] + (pos ? pos[t,:] : 0)
// tokens [B*T] int32; wte [V_local, C] holds vocabulary rows [vocab_start, vocab_start+V_local);
// a token outside that range contributes zero (vocab-parallel embedding). pos [T, C] or null.
// out [B*T, C].
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* pos, int B,
                       int T, int C, int vocab_start, int V_local, float scale,
                       cudaStream_t stream);

// Accumulates: dwte[tok - vocab_start] += scale * dout[b,t]; dpos[t] += dout[b,t] (if dpos).
// Deterministic (no atomics): every element of dwte and dpos adds its terms in (b, t) order,
// the order of the CPU backend.
void embedding_backward(float* dwte, float* dpos, const float* dout, const int32_t* tokens, int B,
                        int T, int C, int vocab_start, int V_local, float scale,
                        cudaStream_t stream);

// Fills table [T, C] with the sinusoidal encoding (kernels/cpu/embedding.h), in double.
void sinusoidal_table(float* table, int T, int C, cudaStream_t stream);

}  // namespace ph::cuda
