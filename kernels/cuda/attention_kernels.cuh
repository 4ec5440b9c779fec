// Row kernels of attention (kernels/cuda/attention.h): the masked softmax of the scores, its
// backward, and the dropped-out probabilities. One block per row of att [B, H, T, T]; row
// r = (b * H + h) * T + i is query i of head h of sample b.
//
// Dropout follows kernels/cpu/attention.cpp exactly: element (b, h, i, j) survives when
// dropout_keep(drop, ((sample0 + b) * H_total + head0 + h) * T * T + i * T + j). Threads walk a
// row by groups of four consecutive indices (one Philox block each, kernels/common/
// dropout_group.h), so every block is drawn once.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/common/dropout_group.h"
#include "kernels/common/dropout_mask.h"
#include "kernels/common/online_softmax.h"
#include "kernels/cuda/block_reduce.cuh"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

// threads: the most threads per row (a row of T elements gets about T / 4 threads, one per
// dropout group, rounded up to whole warps); max_blocks: rows beyond are looped over.
inline constexpr LaunchShape kAttentionRowShape{256, 1 << 20};

// The rows of one attention call and where they sit for dropout (kernels/cpu/attention.h
// AttentionCoords, with H_total resolved).
struct AttentionRows {
  int B, H, T;
  bool causal;
  const uint8_t* key_mask;  // [B, T], 1 = may be attended; null: every key
  long long sample0;        // global-batch index of sample 0
  int head0;                // global index of head 0
  int H_total;              // heads of the unsharded layer
};

// The rows of a call with the arguments of attention_forward / backward (H_total 0: H).
inline AttentionRows attention_rows(int B, int T, int H, bool causal, const uint8_t* key_mask,
                                    long long sample0, int head0, int H_total) {
  return AttentionRows{B, H, T, causal, key_mask, sample0, head0, H_total > 0 ? H_total : H};
}

// One row of att: query i of head h of sample b.
struct AttentionRow {
  int b, h, i;
  int n;                    // keys the causal mask leaves: j < n
  const uint8_t* key_mask;  // [T] of sample b, or null
  uint64_t drop0;           // dropout index of element j = 0

  PH_HD bool visible(int j) const { return j < n && (key_mask == nullptr || key_mask[j] != 0); }
};

PH_HD AttentionRow attention_row(const AttentionRows& a, size_t r) {
  AttentionRow row;
  const size_t bh = r / static_cast<size_t>(a.T);
  row.i = static_cast<int>(r % static_cast<size_t>(a.T));
  row.b = static_cast<int>(bh / static_cast<size_t>(a.H));
  row.h = static_cast<int>(bh % static_cast<size_t>(a.H));
  row.n = a.causal ? row.i + 1 : a.T;
  row.key_mask = a.key_mask ? a.key_mask + static_cast<size_t>(row.b) * a.T : nullptr;
  const uint64_t plane = static_cast<uint64_t>((a.sample0 + row.b) * a.H_total + a.head0 + row.h);
  row.drop0 = (plane * static_cast<uint64_t>(a.T) + static_cast<uint64_t>(row.i)) *
              static_cast<uint64_t>(a.T);
  return row;
}

// Calls f(j, bits) for the elements j of a row of T that this thread owns: the dropout groups
// of the row's indices go round-robin over the block, and `bits` is the Philox word of
// element j (drawn only when `draw`).
template <typename F>
__device__ __forceinline__ void for_each_row_group(const AttentionRow& row, int T,
                                                   const DropoutSpec& drop, bool draw, F f) {
  const uint64_t first = row.drop0 >> 2;
  const uint64_t last = (row.drop0 + static_cast<uint64_t>(T) - 1) >> 2;
  for (uint64_t g = first + static_cast<uint64_t>(thread_in_block()); g <= last; g += blockDim.x) {
    const Philox4 bits = draw ? dropout_group_bits(drop, g) : Philox4{};
    for (int w = 0; w < 4; ++w) {
      const uint64_t index = 4 * g + static_cast<uint64_t>(w);
      if (index < row.drop0) continue;
      const uint64_t j = index - row.drop0;
      if (j < static_cast<uint64_t>(T)) f(static_cast<int>(j), bits.v[w]);
    }
  }
}

// att holds the scaled scores; each row becomes its softmax over the visible keys (0 elsewhere,
// all 0 when no key is visible). With dropout, dropped [B, H, T, T] receives the probabilities
// after dropout (att keeps them before).
__global__ void attention_softmax_forward_kernel(float* att, float* dropped, AttentionRows rows,
                                                 DropoutSpec drop) {
  const size_t total = static_cast<size_t>(rows.B) * rows.H * rows.T;
  const bool dropout = drop.p > 0.0f;
  const float keep_scale = dropout_scale(drop.p);
  for (size_t r = blockIdx.x; r < total; r += gridDim.x) {
    const AttentionRow row = attention_row(rows, r);
    float* x = att + r * rows.T;
    OnlineSoftmax s;
    for (int j = thread_in_block(); j < row.n; j += static_cast<int>(blockDim.x)) {
      if (row.visible(j)) online_softmax_add(s, x[j]);
    }
    s = block_reduce_softmax(s);  // also orders every read above before the writes below
    const bool any = s.max != -INFINITY;
    const float inv = any ? 1.0f / s.sum : 0.0f;
    float* y = dropout ? dropped + r * rows.T : nullptr;
    for_each_row_group(row, rows.T, drop, dropout, [&](int j, uint32_t bits) {
      const float p = any && row.visible(j) ? expf(x[j] - s.max) * inv : 0.0f;
      x[j] = p;
      if (dropout) y[j] = dropout_keep_bits(drop, bits) ? p * keep_scale : 0.0f;
    });
  }
}

// dropped = dropout(att), row by row (the forward's dropped probabilities, regenerated).
__global__ void attention_dropout_probs_kernel(float* dropped, const float* att, AttentionRows rows,
                                               DropoutSpec drop) {
  const size_t total = static_cast<size_t>(rows.B) * rows.H * rows.T;
  const float keep_scale = dropout_scale(drop.p);
  for (size_t r = blockIdx.x; r < total; r += gridDim.x) {
    const AttentionRow row = attention_row(rows, r);
    const float* p = att + r * rows.T;
    float* y = dropped + r * rows.T;
    for_each_row_group(row, rows.T, drop, true, [&](int j, uint32_t bits) {
      y[j] = dropout_keep_bits(drop, bits) ? p[j] * keep_scale : 0.0f;
    });
  }
}

// datt holds dP, the gradient w.r.t. the probabilities after dropout; each row becomes
// dS = P * (G - sum_j P G) with G = dropout mask * scale * dP, the gradient w.r.t. the scaled
// scores (0 beyond the causal limit; P is 0 at padded keys).
__global__ void attention_softmax_backward_kernel(float* datt, const float* att, AttentionRows rows,
                                                  DropoutSpec drop) {
  const size_t total = static_cast<size_t>(rows.B) * rows.H * rows.T;
  const bool dropout = drop.p > 0.0f;
  const float keep_scale = dropout_scale(drop.p);
  for (size_t r = blockIdx.x; r < total; r += gridDim.x) {
    const AttentionRow row = attention_row(rows, r);
    const float* p = att + r * rows.T;
    float* g = datt + r * rows.T;
    float dot = 0.0f;
    for_each_row_group(row, rows.T, drop, dropout, [&](int j, uint32_t bits) {
      if (j >= row.n) return;
      float v = g[j];
      if (dropout) v = dropout_keep_bits(drop, bits) ? v * keep_scale : 0.0f;
      g[j] = v;
      dot += p[j] * v;
    });
    dot = block_reduce(dot, SumOp{}, 0.0f);
    // The same thread owns the same j in both loops: g[j] is its own write.
    for_each_row_group(row, rows.T, drop, false,
                       [&](int j, uint32_t) { g[j] = j < row.n ? p[j] * (g[j] - dot) : 0.0f; });
  }
}

namespace impl {

// Threads for rows of T elements: one per dropout group, whole warps, at most s.threads.
inline int attention_row_threads(int T, LaunchShape s) {
  const int groups = T / 4 + 2;  // a row of T may straddle T / 4 + 2 groups
  const int warps = (groups + kWarpSize - 1) / kWarpSize;
  const int threads = warps * kWarpSize;
  return threads < s.threads ? threads : s.threads;
}

// One launch over the B*H*T rows of the probabilities, in the shape of kAttentionRowShape.
template <typename Launch, typename Kernel, typename... Args>
void launch_attention_rows(const Launch& launch, const AttentionRows& rows, LaunchShape s,
                           Kernel kernel, Args... args) {
  const size_t total = static_cast<size_t>(rows.B) * rows.H * rows.T;
  if (total == 0) return;
  launch(dim3(grid_blocks(total, 1, s.max_blocks)), dim3(attention_row_threads(rows.T, s)), kernel,
         args...);
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
// every key (no triangular GEMM); the softmax zeroes what the masks hide, so the products after
// it add zeros there.
template <typename Gemm, typename Launch>
void attention_forward(const Gemm& gemm, const Launch& launch, float* out, float* att,
                       float* dropped, const float* qkv, int C, const AttentionRows& rows,
                       const DropoutSpec& drop, LaunchShape s = kAttentionRowShape) {
  const int B = rows.B, T = rows.T, H = rows.H;
  const bool dropout = drop.p > 0.0f;
  gemm(attention_scores_plan(B, T, C, H, attention_scale(C, H)), qkv, qkv, att);
  attention_softmax_forward(launch, att, dropout ? dropped : nullptr, rows, drop, s);
  gemm(attention_context_plan(B, T, C, H), qkv, dropout ? dropped : att, out);
}

template <typename Gemm, typename Launch>
void attention_backward(const Gemm& gemm, const Launch& launch, float* dqkv, float* datt,
                        const float* dout, const float* qkv, const float* att, int C,
                        const AttentionRows& rows, const DropoutSpec& drop,
                        LaunchShape s = kAttentionRowShape) {
  const int B = rows.B, T = rows.T, H = rows.H;
  const bool dropout = drop.p > 0.0f;
  const float scale = attention_scale(C, H);
  if (dropout) attention_dropout_probs(launch, datt, att, rows, drop, s);
  gemm(attention_dv_plan(B, T, C, H), dout, dropout ? datt : att, dqkv);
  gemm(attention_dprobs_plan(B, T, C, H), qkv, dout, datt);
  attention_softmax_backward(launch, datt, att, rows, drop, s);
  gemm(attention_dq_plan(B, T, C, H, scale), qkv, datt, dqkv);
  gemm(attention_dk_plan(B, T, C, H, scale), qkv, datt, dqkv);
}

}  // namespace impl
}  // namespace ph::cuda
