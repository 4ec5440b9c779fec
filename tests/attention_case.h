// The shape of one attention call under test (kernels/common/attention_args.h): sizes, the
// layout of q and kv, causal mask, per-sample key lengths, dropout and the call's place in the
// unsharded tensors. The CPU kernel tests extend it with a double-precision reference, the
// CUDA tests with their row launch plan.
//
// All inputs live in one buffer x: q at offset 0 and kv at kv_offset(). Self-attention uses
// the fused q|k|v layout [B*T, 3C] (kv = x + C, ldq = ldkv = 3C, Tq = Tk); cross-attention
// (fused = false) stores q [B*Tq, ldq] and then kv [B*Tk, ldkv], each row wider than it needs
// by q_pad / kv_pad columns that no kernel may read into a result or write. The gradients dq
// and dkv accumulate into a buffer dx of the same layout.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/common/attention_args.h"
#include "kernels/common/dropout_mask.h"

namespace ph::test {

struct AttentionShape {
  int B = 2, Tq = 5, Tk = 5, C = 12, H = 3;
  bool causal = true;
  bool fused = true;             // self-attention on one q|k|v buffer (needs Tq == Tk)
  int q_pad = 0, kv_pad = 0;     // extra columns per row of q / kv (cross layout only)
  std::vector<int32_t> key_len;  // [B] visible keys per sample; empty: every key
  std::vector<int32_t> q_len;    // [B] query rows that attend per sample; empty: every row
  std::vector<int32_t> q_rows;   // [B*Tq] a row attends when >= 0; empty: every row
  DropoutSpec drop;
  AttentionCoords coords;

  int hs() const { return C / H; }
  int ldq() const { return fused ? 3 * C : C + q_pad; }
  int ldkv() const { return fused ? 3 * C : 2 * C + kv_pad; }
  size_t kv_offset() const {
    return fused ? static_cast<size_t>(C) : static_cast<size_t>(B) * Tq * ldq();
  }
  size_t x_size() const {
    return fused ? static_cast<size_t>(B) * Tq * 3 * C
                 : kv_offset() + static_cast<size_t>(B) * Tk * ldkv();
  }
  size_t out_size() const { return static_cast<size_t>(B) * Tq * C; }
  size_t att_size() const { return static_cast<size_t>(B) * H * Tq * Tk; }

  // Positions in x (and dx) of element d of head h of query i, key j and value j of sample b.
  size_t q_index(int b, int i, int h, int d) const {
    return (static_cast<size_t>(b) * Tq + i) * ldq() + static_cast<size_t>(h) * hs() + d;
  }
  size_t k_index(int b, int j, int h, int d) const {
    return kv_offset() + (static_cast<size_t>(b) * Tk + j) * ldkv() +
           static_cast<size_t>(h) * hs() + d;
  }
  size_t v_index(int b, int j, int h, int d) const { return k_index(b, j, h, d) + C; }
  size_t out_index(int b, int i, int h, int d) const {
    return (static_cast<size_t>(b) * Tq + i) * C + static_cast<size_t>(h) * hs() + d;
  }
  size_t att_index(int b, int h, int i, int j) const {
    return ((static_cast<size_t>(b) * H + h) * Tq + i) * Tk + j;
  }
  // Whether position e of x holds an element of q, k or v (not a pad column).
  std::vector<bool> used() const {
    std::vector<bool> u(x_size(), false);
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) {
        for (int d = 0; d < hs(); ++d) {
          for (int i = 0; i < Tq; ++i) u[q_index(b, i, h, d)] = true;
          for (int j = 0; j < Tk; ++j) u[k_index(b, j, h, d)] = u[v_index(b, j, h, d)] = true;
        }
      }
    }
    return u;
  }

  AttentionDims dims() const {
    AttentionDims d;
    d.B = B;
    d.Tq = Tq;
    d.Tk = Tk;
    d.C = C;
    d.H = H;
    d.ldq = ldq();
    d.ldkv = ldkv();
    d.causal = causal;
    d.key_len = key_len.empty() ? nullptr : key_len.data();
    d.q_len = q_len.empty() ? nullptr : q_len.data();
    d.q_rows = q_rows.empty() ? nullptr : q_rows.data();
    return d;
  }

  // The masks written out from their definition (not through attention_visible_keys): key j of
  // sample b is padding when j >= key_len[b]; the causal mask, aligned at the end, lets query i
  // see j <= i + (Tk - Tq); query i of sample b sees nothing when i >= q_len[b] or when
  // q_rows[b * Tq + i] < 0.
  bool padded_key(int b, int j) const { return !key_len.empty() && j >= key_len[b]; }
  bool padded_query(int b, int i) const {
    return (!q_len.empty() && i >= q_len[b]) ||
           (!q_rows.empty() && q_rows[static_cast<size_t>(b) * Tq + i] < 0);
  }
  bool visible(int b, int i, int j) const {
    return !padded_key(b, j) && !padded_query(b, i) && (!causal || j <= i + (Tk - Tq));
  }
  // Dropout index of probability (b, h, i, j), as AttentionCoords defines it.
  uint64_t drop_index(int b, int h, int i, int j) const {
    const int Ht = coords.H_total > 0 ? coords.H_total : H;
    const uint64_t Tqm = static_cast<uint64_t>(coords.Tq_max > 0 ? coords.Tq_max : Tq);
    const uint64_t Tkm = static_cast<uint64_t>(coords.Tk_max > 0 ? coords.Tk_max : Tk);
    const uint64_t plane = static_cast<uint64_t>((coords.sample0 + b) * Ht + coords.head0 + h);
    return plane * Tqm * Tkm + static_cast<uint64_t>(i) * Tkm + static_cast<uint64_t>(j);
  }
};

}  // namespace ph::test
