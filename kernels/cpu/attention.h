// Multi-head scaled dot-product attention: queries from one buffer, keys and values from
// another (self-attention passes views of one fused q|k|v buffer), with causal and key-length
// masks (kernels/common/attention_args.h states the shapes and the masks).
#pragma once
#include <cstddef>

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

// Cross-attention folded into a short memory (kernels/common/attention_args.h states the
// arithmetic; attention.cpp the layout). folded [folded_cross_floats(dims)] for dims.B sources
// from their keys and values kv, the q weight wq [H * hs, C] and bias bq [H * hs] (null: none)
// and the output projection's columns wo [Cout, H * hs] of this call's heads.
size_t folded_cross_floats(const FoldedCrossDims& dims);
void fold_cross_memory(float* folded, const float* kv, const float* wq, const float* bq,
                       const float* wo, const FoldedCrossDims& dims);
// For the query groups b in [b_begin, b_end): rows [b * beams, (b + 1) * beams) of
// y [B * beams, Cout] = bias [Cout] (null: 0) + the output projection of the attention of the
// query rows x [B * beams, C] over the folded source dims.source[b] (null: b), keys
// j >= key_len[b] masked (a row that sees no key gets the bias alone). A row's result depends
// on that row and its source alone, not on B or on how a caller splits the groups.
void folded_cross_attention(float* y, const float* x, const float* folded, const float* bias,
                            const FoldedCrossDims& dims, int b_begin, int b_end);

}  // namespace ph::cpu
