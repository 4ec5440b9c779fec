// The arguments of one multi-head scaled dot-product attention call, shared by both backends
// (kernels/backend.h, kernels/cpu/attention.h, kernels/cuda/attention.h).
//
// Shapes, per sample b of B:
//   q    rows i < Tq of width C at q + (b * Tq + i) * ldq        (heads concatenated: head h
//        owns columns h * hs .. (h + 1) * hs - 1, hs = C / H)
//   k, v rows j < Tk at kv + (b * Tk + j) * ldkv: k in columns [0, C), v in [C, 2C)
//   out  [B * Tq, C], att [B, H, Tq, Tk]
// Self-attention on a fused q|k|v buffer [B*T, 3C] is q = qkv, kv = qkv + C, ldq = ldkv = 3C;
// cross-attention reads q [B*Tq, C] (ldq = C) and a fused k|v buffer [B*Tk, 2C] (ldkv = 2C).
#pragma once
#include <cstdint>

#include "kernels/common/hostdevice.h"

namespace ph {

struct AttentionDims {
  int B = 0;
  int Tq = 0;           // query rows per sample
  int Tk = 0;           // keys per sample
  int C = 0;            // width of q, and of each of k and v (= H * head size)
  int H = 0;            // heads of this call
  int ldq = 0;          // row stride of q and dq
  int ldkv = 0;         // row stride of kv and dkv
  bool causal = false;  // query i sees key j only if j <= i + (Tk - Tq) (aligned at the end)
  // [B] keys of sample b that may be attended: j < key_len[b] (right padding); device memory.
  // null: every key. A query row that sees no key outputs zeros and passes no gradient.
  const int32_t* key_len = nullptr;
  // [B] query rows of sample b that attend: rows i >= q_len[b] see no key (so they output zeros
  // and pass no gradient, as above); device memory. null: every row. A packed pass's padding
  // rows (model/pass.h), which the CPU kernels then skip instead of computing.
  const int32_t* q_len = nullptr;
  // [B*Tq] or null: query row i of sample b attends only when q_rows[b * Tq + i] >= 0; the
  // others see no key, as above; device memory. The rows a caller reads (BERT's last layer,
  // whose heads read a few positions), which the CPU kernels then compute alone.
  const int32_t* q_rows = nullptr;
};

// Where this call's probabilities sit in the unsharded probability tensor of the whole global
// batch, for dropout: element (b, h, i, j) has index
//   ((sample0 + b) * H_total + head0 + h) * Tq_max * Tk_max + i * Tk_max + j.
// Tq_max and Tk_max are the configured maximum lengths (not the lengths of one micro-batch), so
// that a mask never depends on how much a micro-batch happens to be padded.
struct AttentionCoords {
  int64_t sample0 = 0;  // global-batch index of this call's first sample
  int head0 = 0;        // global index of this call's first head (tensor parallelism)
  int H_total = 0;      // heads of the unsharded layer (0: H)
  int Tq_max = 0;       // query rows per sample of the unsharded tensor (0: Tq)
  int Tk_max = 0;       // keys per sample of the unsharded tensor (0: Tk)
};

// Cross-attention folded into a short memory, for incremental decoding (Backend::
// fold_cross_memory, Backend::folded_cross_attention). With this rank's heads h < H of width hs
// and scale = 1 / sqrt(hs), the scaled scores of a query row x [C] (the layer's input, before
// the q projection) against key j of its source are x . qk[h][j] + qb[h][j], with
//   qk[h][j] [C]    = scale * sum_d k[j][h * hs + d] * wq[h * hs + d][:]
//   qb[h][j]        = scale * sum_d k[j][h * hs + d] * bq[h * hs + d]  (0 without a q bias)
// and the output projection of the context is the sum over (h, j) of P_h[j] * vo[h][j] with
//   vo[h][j] [Cout] = sum_d v[j][h * hs + d] * wo[:][h * hs + d]
// (the value bias is inside v; the projection's bias is added once). They are made once per
// source (Backend::folded_cross_floats() floats for B sources, in a layout of the backend's);
// a step then costs H * Tk instead of H * hs per input and output channel, which pays while Tk
// is well below hs. k and v are read as in AttentionDims: rows j < Tk of source b at
// kv + (b * Tk + j) * ldkv, k in columns [0, H * hs), v after them; wq [H * hs, C] is this
// rank's rows of the q weight, wo [Cout, H * hs] its columns of the output projection.
//
// A step has B groups of `beams` query rows; group b reads folded source source[b] (null: b) of
// the `sources` folded (0: B), so that sources can leave a batch without moving their folds.
struct FoldedCrossDims {
  int B = 0;                         // sources (folding); query groups (a step)
  int sources = 0;                   // a step: sources in the folded memory (0: B)
  int Tk = 0;                        // keys per source
  int beams = 0;                     // query rows per group (the hypotheses of a source)
  int C = 0;                         // width of a query row (the q projection's input)
  int Cout = 0;                      // width of the output (the projection's output)
  int H = 0;                         // heads of this rank
  int hs = 0;                        // head size
  int ldkv = 0;                      // row stride of kv
  const int32_t* key_len = nullptr;  // [B] group b attends keys j < key_len[b]; null: all; device
  const int32_t* source = nullptr;   // [B] or null, as above; device
};

// Query rows of sample b that may see keys: rows at or past it see none.
PH_HD int attention_query_rows(const AttentionDims& a, int b) {
  int n = a.q_len ? a.q_len[b] : a.Tq;
  if (n > a.Tq) n = a.Tq;
  return n < 0 ? 0 : n;
}

// Keys visible to query row i of sample b: j < attention_visible_keys(...).
PH_HD int attention_visible_keys(const AttentionDims& a, int b, int i) {
  if (a.q_len && i >= a.q_len[b]) return 0;
  if (a.q_rows && a.q_rows[static_cast<int64_t>(b) * a.Tq + i] < 0) return 0;
  int n = a.key_len ? a.key_len[b] : a.Tk;
  if (n > a.Tk) n = a.Tk;
  if (a.causal) {
    const int last = i + (a.Tk - a.Tq) + 1;
    if (last < n) n = last;
  }
  return n < 0 ? 0 : n;
}

}  // namespace ph
