// Row kernels of attention (kernels/cuda/attention.h): the masked softmax of the scores, its
// backward, and the dropped-out probabilities. One block per row of att [B, H, Tq, Tk]; row
// r = (b * H + h) * Tq + i is query i of head h of sample b, and it sees the keys
// j < attention_visible_keys(dims, b, i) (kernels/common/attention_args.h: causal mask aligned
// at the end, per-sample key lengths read from device memory).
//
// Dropout follows kernels/cpu/attention.cpp exactly: element (b, h, i, j) survives when
// dropout_keep(drop, ((sample0 + b) * H_total + head0 + h) * Tq_max * Tk_max + i * Tk_max + j)
// (AttentionCoords). Threads walk a row by groups of four consecutive indices (one Philox block
// each, kernels/common/dropout_group.h), so every block is drawn once.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/common/attention_args.h"
#include "kernels/common/dropout_group.h"
#include "kernels/common/dropout_mask.h"
#include "kernels/common/online_softmax.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

// threads: the most threads per row (a row of Tk elements gets about Tk / 4 threads, one per
// dropout group, rounded up to whole warps); max_blocks: rows beyond are looped over.
inline constexpr LaunchShape kAttentionRowShape{256, 1 << 20};
// The zero fill of the output of a call without keys (Tk = 0).
inline constexpr LaunchShape kAttentionFillShape{256, 1 << 16};

// The rows of one attention call and where they sit for dropout (AttentionCoords with its
// defaults resolved).
struct AttentionRows {
  AttentionDims dims;  // key_len: device memory (host memory in the host tests)
  long long sample0;   // global-batch index of sample 0
  int head0;           // global index of head 0
  int H_total;         // heads of the unsharded layer
  int Tq_max, Tk_max;  // query rows and keys per sample of the unsharded tensor
};

inline AttentionRows attention_rows(const AttentionDims& dims, const AttentionCoords& coords) {
  return AttentionRows{dims,
                       static_cast<long long>(coords.sample0),
                       coords.head0,
                       coords.H_total > 0 ? coords.H_total : dims.H,
                       coords.Tq_max > 0 ? coords.Tq_max : dims.Tq,
                       coords.Tk_max > 0 ? coords.Tk_max : dims.Tk};
}

PH_HD size_t attention_row_count(const AttentionRows& a) {
  return static_cast<size_t>(a.dims.B) * static_cast<size_t>(a.dims.H) *
         static_cast<size_t>(a.dims.Tq);
}

// One row of att: query i of head h of sample b.
struct AttentionRow {
  int b, h, i;
  int n;           // visible keys: j < n
  uint64_t drop0;  // dropout index of element j = 0
};

PH_HD AttentionRow attention_row(const AttentionRows& a, size_t r) {
  AttentionRow row;
  const size_t bh = r / static_cast<size_t>(a.dims.Tq);
  row.i = static_cast<int>(r % static_cast<size_t>(a.dims.Tq));
  row.b = static_cast<int>(bh / static_cast<size_t>(a.dims.H));
  row.h = static_cast<int>(bh % static_cast<size_t>(a.dims.H));
  row.n = attention_visible_keys(a.dims, row.b, row.i);
  const uint64_t plane = static_cast<uint64_t>((a.sample0 + row.b) * a.H_total + a.head0 + row.h);
  row.drop0 = (plane * static_cast<uint64_t>(a.Tq_max) + static_cast<uint64_t>(row.i)) *
              static_cast<uint64_t>(a.Tk_max);
  return row;
}

// Calls f(j, bits) for the elements j of a row of Tk that this thread owns: the dropout groups
// of the row's indices go round-robin over the block, and `bits` is the Philox word of
// element j (drawn only when `draw`).
template <typename F>
__device__ __forceinline__ void for_each_row_group(const AttentionRow& row, int Tk,
                                                   const DropoutSpec& drop, bool draw, F f) {
  const uint64_t first = row.drop0 >> 2;
  const uint64_t last = (row.drop0 + static_cast<uint64_t>(Tk) - 1) >> 2;
  for (uint64_t g = first + static_cast<uint64_t>(thread_in_block()); g <= last; g += blockDim.x) {
    const Philox4 bits = draw ? dropout_group_bits(drop, g) : Philox4{};
    for (int w = 0; w < 4; ++w) {
      const uint64_t index = 4 * g + static_cast<uint64_t>(w);
      if (index < row.drop0) continue;
      const uint64_t j = index - row.drop0;
      if (j < static_cast<uint64_t>(Tk)) f(static_cast<int>(j), bits.v[w]);
    }
  }
}

// att holds the scaled scores; each row becomes its softmax over the visible keys (0 elsewhere,
// all 0 when no key is visible). With dropout, dropped [B, H, Tq, Tk] receives the
// probabilities after dropout (att keeps them before).
__global__ void attention_softmax_forward_kernel(float* att, float* dropped, AttentionRows rows,
                                                 DropoutSpec drop) {
  const size_t total = attention_row_count(rows);
  const int Tk = rows.dims.Tk;
  const bool dropout = drop.p > 0.0f;
  const float keep_scale = dropout_scale(drop.p);
  for (size_t r = blockIdx.x; r < total; r += gridDim.x) {
    const AttentionRow row = attention_row(rows, r);
    float* x = att + r * Tk;
    OnlineSoftmax s;
    for (int j = thread_in_block(); j < row.n; j += static_cast<int>(blockDim.x)) {
      online_softmax_add(s, x[j]);
    }
    s = block_reduce_softmax(s);  // also orders every read above before the writes below
    const bool any = s.max != -INFINITY;
    const float inv = any ? 1.0f / s.sum : 0.0f;
    float* y = dropout ? dropped + r * Tk : nullptr;
    for_each_row_group(row, Tk, drop, dropout, [&](int j, uint32_t bits) {
      const float p = any && j < row.n ? expf(x[j] - s.max) * inv : 0.0f;
      x[j] = p;
      if (dropout) y[j] = dropout_keep_bits(drop, bits) ? p * keep_scale : 0.0f;
    });
  }
}

// dropped = dropout(att), row by row (the forward's dropped probabilities, regenerated).
__global__ void attention_dropout_probs_kernel(float* dropped, const float* att, AttentionRows rows,
                                               DropoutSpec drop) {
  const size_t total = attention_row_count(rows);
  const int Tk = rows.dims.Tk;
  const float keep_scale = dropout_scale(drop.p);
  for (size_t r = blockIdx.x; r < total; r += gridDim.x) {
    const AttentionRow row = attention_row(rows, r);
    const float* p = att + r * Tk;
    float* y = dropped + r * Tk;
    for_each_row_group(row, Tk, drop, true, [&](int j, uint32_t bits) {
      y[j] = dropout_keep_bits(drop, bits) ? p[j] * keep_scale : 0.0f;
    });
  }
}

// datt holds dP, the gradient w.r.t. the probabilities after dropout; each row becomes
// dS = P * (G - sum_j P G) with G = dropout mask * scale * dP, the gradient w.r.t. the scaled
// scores, over the visible keys, and exactly 0 at every key the row does not see (so the
// products after it add nothing to the gradients of padded keys).
__global__ void attention_softmax_backward_kernel(float* datt, const float* att, AttentionRows rows,
                                                  DropoutSpec drop) {
  const size_t total = attention_row_count(rows);
  const int Tk = rows.dims.Tk;
  const bool dropout = drop.p > 0.0f;
  const float keep_scale = dropout_scale(drop.p);
  for (size_t r = blockIdx.x; r < total; r += gridDim.x) {
    const AttentionRow row = attention_row(rows, r);
    const float* p = att + r * Tk;
    float* g = datt + r * Tk;
    float dot = 0.0f;
    for_each_row_group(row, Tk, drop, dropout, [&](int j, uint32_t bits) {
      if (j >= row.n) return;
      float v = g[j];
      if (dropout) v = dropout_keep_bits(drop, bits) ? v * keep_scale : 0.0f;
      g[j] = v;
      dot += p[j] * v;
    });
    dot = block_reduce(dot, SumOp{}, 0.0f);
    // The same thread owns the same j in both loops: g[j] is its own write.
    for_each_row_group(row, Tk, drop, false,
                       [&](int j, uint32_t) { g[j] = j < row.n ? p[j] * (g[j] - dot) : 0.0f; });
  }
}

// out [n] = 0: the output of a call whose queries see no key at all (Tk = 0).
__global__ void attention_zero_kernel(float* out, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) out[i] = 0.0f;
}

namespace impl {

// Threads for rows of Tk elements: one per dropout group, whole warps, at most s.threads.
inline int attention_row_threads(int Tk, LaunchShape s) {
  const int groups = Tk / 4 + 2;  // a row of Tk may straddle Tk / 4 + 2 groups
  const int warps = (groups + kWarpSize - 1) / kWarpSize;
  const int threads = warps * kWarpSize;
  return threads < s.threads ? threads : s.threads;
}

// One launch over the B*H*Tq rows of the probabilities, in the shape of kAttentionRowShape.
template <typename Launch, typename Kernel, typename... Args>
void launch_attention_rows(const Launch& launch, const AttentionRows& rows, LaunchShape s,
                           Kernel kernel, Args... args) {
  const size_t total = attention_row_count(rows);
  if (total == 0 || rows.dims.Tk == 0) return;
  launch(dim3(grid_blocks(total, 1, s.max_blocks)), dim3(attention_row_threads(rows.dims.Tk, s)),
         kernel, args...);
}

template <typename Launch>
void attention_softmax_forward(const Launch& launch, float* att, float* dropped,
                               const AttentionRows& rows, const DropoutSpec& drop,
                               LaunchShape s = kAttentionRowShape) {
  launch_attention_rows(launch, rows, s, attention_softmax_forward_kernel, att, dropped, rows,
                        drop);
}

template <typename Launch>
void attention_dropout_probs(const Launch& launch, float* dropped, const float* att,
                             const AttentionRows& rows, const DropoutSpec& drop,
                             LaunchShape s = kAttentionRowShape) {
  launch_attention_rows(launch, rows, s, attention_dropout_probs_kernel, dropped, att, rows, drop);
}

template <typename Launch>
void attention_softmax_backward(const Launch& launch, float* datt, const float* att,
                                const AttentionRows& rows, const DropoutSpec& drop,
                                LaunchShape s = kAttentionRowShape) {
  launch_attention_rows(launch, rows, s, attention_softmax_backward_kernel, datt, att, rows, drop);
}

inline float attention_scale(int C, int H) {
  return 1.0f / std::sqrt(static_cast<float>(C / H));
}

// The whole op as a sequence of GEMM plans and row kernels (kernels/cuda/attention.h states
// the contract). gemm(plan, A, B, C) runs a plan of kernels/cuda/gemm_plan.h; attention.cu
// passes cuBLAS and the stream launcher, the host tests a reference GEMM and the shim.
//   forward:  att = scale Q K^T; softmax rows (+ dropped = dropout(att)); out = P' V
//   backward: [dropped = dropout(att) into datt]; dV += P'^T dY; datt = dY V^T;
//             dS rows in place; dQ += scale dS K; dK += scale dS^T Q
// where P' is att, or the dropped-out probabilities with dropout. The scores are computed for
// every key of every sample (no triangular GEMM, no per-sample lengths on the host); the
// softmax leaves exact zeros in P' and dS at every key a row does not see, so the products
// after it add exact zeros there: masked keys get no probability and no gradient (as long as
// their k and v are finite numbers: 0 * inf would be NaN).
// Shapes with no query row (B * H * Tq = 0) do nothing; without keys (Tk = 0) out is zero.
template <typename Gemm, typename Launch>
void attention_forward(const Gemm& gemm, const Launch& launch, float* out, float* att,
                       float* dropped, const float* q, const float* kv, const AttentionRows& rows,
                       const DropoutSpec& drop, LaunchShape s = kAttentionRowShape) {
  const AttentionDims& d = rows.dims;
  if (attention_row_count(rows) == 0) return;
  if (d.Tk == 0) {
    const size_t n =
        static_cast<size_t>(d.B) * static_cast<size_t>(d.Tq) * static_cast<size_t>(d.C);
    const LaunchShape f = kAttentionFillShape;
    launch(dim3(grid_blocks(n, f.threads, f.max_blocks)), dim3(f.threads), attention_zero_kernel,
           out, n);
    return;
  }
  const bool dropout = drop.p > 0.0f;
  gemm(attention_scores_plan(d, attention_scale(d.C, d.H)), kv, q, att);
  attention_softmax_forward(launch, att, dropout ? dropped : nullptr, rows, drop, s);
  gemm(attention_context_plan(d), kv, dropout ? dropped : att, out);
}

template <typename Gemm, typename Launch>
void attention_backward(const Gemm& gemm, const Launch& launch, float* dq, float* dkv, float* datt,
                        const float* dout, const float* q, const float* kv, const float* att,
                        const AttentionRows& rows, const DropoutSpec& drop,
                        LaunchShape s = kAttentionRowShape) {
  const AttentionDims& d = rows.dims;
  if (attention_row_count(rows) == 0 || d.Tk == 0) return;
  const bool dropout = drop.p > 0.0f;
  const float scale = attention_scale(d.C, d.H);
  if (dropout) attention_dropout_probs(launch, datt, att, rows, drop, s);
  gemm(attention_dv_plan(d), dout, dropout ? datt : att, dkv);
  gemm(attention_dprobs_plan(d), kv, dout, datt);
  attention_softmax_backward(launch, datt, att, rows, drop, s);
  gemm(attention_dq_plan(d, scale), kv, datt, dq);
  gemm(attention_dk_plan(d, scale), q, datt, dkv);
}

}  // namespace impl
}  // namespace ph::cuda
