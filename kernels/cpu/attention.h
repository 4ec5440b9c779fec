// Multi-head scaled dot-product attention on a fused q|k|v buffer.
#pragma once
#include <cstdint>

#include "kernels/common/dropout_mask.h"

namespace ph::cpu {

// Where this call's heads and samples sit in the unsharded tensors, for dropout indices:
// the probability element (sample, head, i, j) of the whole global batch has index
// ((sample0 + b) * H_total + head0 + h) * T * T + i * T + j.
struct AttentionCoords {
  int64_t sample0 = 0;  // global-batch index of this call's first sample
  int head0 = 0;        // global index of this call's first head (tensor parallelism)
  int H_total = 0;      // heads of the unsharded layer (0 means H)
};

// qkv [B, T, 3*C] with per token q[C] | k[C] | v[C], head h owning columns h*hs..(h+1)*hs-1
// of each (hs = C / H). att [B, H, T, T] receives the softmax probabilities (before dropout,
// kept for backward; masked entries are 0). out [B, T, C] = dropout(att) @ v, heads
// concatenated. causal masks j > i. key_mask [B, T] (1 = may be attended, 0 = padding) may be
// null; a query row with no visible key outputs zeros. Scores are scaled by 1/sqrt(hs).
// drop.p > 0 applies dropout to the probabilities with the coordinates above.
void attention_forward(float* out, float* att, const float* qkv, const uint8_t* key_mask, int B,
                       int T, int C, int H, bool causal, const DropoutSpec& drop,
                       const AttentionCoords& coords);

// Accumulates dqkv [B, T, 3*C] (+=) from dout [B, T, C]. datt is scratch [B, H, T, T].
// The dropout mask is regenerated from (drop, coords), never stored.
void attention_backward(float* dqkv, float* datt, const float* dout, const float* qkv,
                        const float* att, const uint8_t* key_mask, int B, int T, int C, int H,
                        bool causal, const DropoutSpec& drop, const AttentionCoords& coords);

}  // namespace ph::cpu
