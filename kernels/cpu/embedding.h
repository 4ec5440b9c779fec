// Token + position embedding.
#pragma once
#include <cstdint>

namespace ph::cpu {

// out[b,t,:] = scale * wte[tokens[b,t] - vocab_start, :] + (pos ? pos[t,:] : 0)
// tokens [B*T] int32; wte [V_local, C] holds vocabulary rows [vocab_start, vocab_start+V_local);
// a token outside that range contributes zero (vocab-parallel embedding: the ranks' partial
// outputs are summed by the caller). pos [T, C] is the learned wpe or a sinusoidal table, or
// null for no positions. out [B*T, C].
void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* pos, int B,
                       int T, int C, int vocab_start, int V_local, float scale);

// Accumulates: dwte[tok - vocab_start] += scale * dout[b,t]; dpos[t] += dout[b,t] (if dpos).
// Deterministic (no atomics; the result does not depend on the thread count).
void embedding_backward(float* dwte, float* dpos, const float* dout, const int32_t* tokens, int B,
                        int T, int C, int vocab_start, int V_local, float scale);

// Fills table [T, C] with the sinusoidal encoding of Vaswani et al. (2017):
// table[t, 2i] = sin(t / 10000^(2i/C)), table[t, 2i+1] = cos(t / 10000^(2i/C)).
void sinusoidal_table(float* table, int T, int C);

}  // namespace ph::cpu
