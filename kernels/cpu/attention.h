// Multi-head scaled dot-product attention: queries from one buffer, keys and values from
// another (self-attention passes views of one fused q|k|v buffer), with causal and key-length
// masks (kernels/common/attention_args.h states the shapes and the masks).
#pragma once
#include "kernels/common/attention_args.h"
#include "kernels/common/dropout_mask.h"

namespace ph::cpu {

// att [B, H, Tq, Tk] receives the softmax probabilities (before dropout, kept for backward;
// keys a query does not see are 0, and a row that sees no key is all 0). out [B*Tq, C] =
// dropout(att) @ v, heads concatenated. Scores are scaled by 1/sqrt(C / H). drop.p > 0 applies
// dropout to the probabilities at the coordinates of `coords`.
void attention_forward(float* out, float* att, const float* q, const float* kv,
                       const AttentionDims& dims, const DropoutSpec& drop,
                       const AttentionCoords& coords);

// Accumulates dq (layout of q, stride ldq) and dkv (layout of kv, stride ldkv) (+=) from
// dout [B*Tq, C]. datt is scratch [B, H, Tq, Tk]. Keys a query does not see receive no
// gradient from it (padded keys none at all). The dropout mask is regenerated from (drop,
// coords), never stored.
void attention_backward(float* dq, float* dkv, float* datt, const float* dout, const float* q,
                        const float* kv, const float* att, const AttentionDims& dims,
                        const DropoutSpec& drop, const AttentionCoords& coords);

}  // namespace ph::cpu
