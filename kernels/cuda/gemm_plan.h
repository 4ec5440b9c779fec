// Every GEMM of the CUDA backend as the arguments of a column-major cuBLAS call.
//
// polyhead stores matrices row-major (weights in PyTorch [out, in] orientation); cuBLAS reads
// them column-major. A row-major X [r, c] with leading dimension ld is, element for element,
// the column-major X^T [c, r] with the same ld. So the row-major product Y = op(L) op(R) is
// issued as the column-major Y^T = op(R)^T op(L)^T: cuBLAS's A is the right operand, its B the
// left one, m = columns of Y, n = rows of Y, ldc = ld of Y.
//
// Pure host code, no CUDA headers: the plans are tested on the CPU (tests/test_cuda_gemm_plan)
// with a reference of cuBLAS's semantics, and the CUDA backend issues exactly these plans.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/common/attention_args.h"

namespace ph::cuda {

// One cublasSgemmStridedBatched call (batch == 1: one cublasSgemm), operands as cuBLAS sees
// them: column-major op(A) [m, k], op(B) [k, n], C [m, n]; for i < batch,
// C_i = alpha op(A_i) op(B_i) + beta C_i with X_i = X + i * strideX (C is not read if beta == 0).
struct GemmCall {
  bool transa, transb;
  int m, n, k, lda, ldb, ldc;
  long long strideA, strideB, strideC;
  int batch;
  float alpha, beta;
};

// `call` on operands that start at an offset inside the buffers the caller passes, repeated
// `outer` times: repetition o uses A + offsetA + o * outer_strideA, and likewise B and C.
// The attention products need the repetition (see over_heads).
struct GemmPlan {
  GemmCall call;
  long long offsetA, offsetB, offsetC;
  int outer;
  long long outer_strideA, outer_strideB, outer_strideC;
};

namespace gemm_detail {

inline GemmCall single(bool transa, bool transb, int m, int n, int k, int lda, int ldb, int ldc,
                       float alpha, float beta) {
  return GemmCall{transa, transb, m, n, k, lda, ldb, ldc, 0, 0, 0, 1, alpha, beta};
}

inline GemmPlan alone(const GemmCall& call) {
  return GemmPlan{call, 0, 0, 0, 1, 0, 0, 0};
}

// Where the matrix of (sample b, head h) starts in a buffer: offset + b * sample + h * head.
struct HeadOperand {
  long long offset, sample, head;
};

// The per-(b, h) operands of attention (kernels/common/attention_args.h): q [B*Tq, ldq],
// k / v [B*Tk, ldkv] at columns [0, C) / [C, 2C) of kv, out / dout [B*Tq, C],
// att / datt [B, H, Tq, Tk].
inline HeadOperand q_rows(const AttentionDims& d) {
  return HeadOperand{0, static_cast<long long>(d.Tq) * d.ldq, d.C / d.H};
}
inline HeadOperand k_rows(const AttentionDims& d) {
  return HeadOperand{0, static_cast<long long>(d.Tk) * d.ldkv, d.C / d.H};
}
inline HeadOperand v_rows(const AttentionDims& d) {
  return HeadOperand{d.C, static_cast<long long>(d.Tk) * d.ldkv, d.C / d.H};
}
inline HeadOperand heads_out(const AttentionDims& d) {
  return HeadOperand{0, static_cast<long long>(d.Tq) * d.C, d.C / d.H};
}
inline HeadOperand probs(const AttentionDims& d) {
  const long long plane = static_cast<long long>(d.Tq) * d.Tk;
  return HeadOperand{0, d.H * plane, plane};
}

// One (b, h) GEMM for all B * H pairs. The offset of pair (b, h) in q or kv,
// b * T * ld + h * hs, is not a multiple of one stride of b * H + h, so a single strided
// batch cannot cover the grid: the larger of B and H is the cuBLAS batch and the smaller the
// outer repetition (fewest calls). Batched heads interleave with stride hs: their outputs are
// disjoint, though not contiguous (the plan tests check that no element of C belongs to two
// matrices).
inline GemmPlan over_heads(GemmCall call, int B, int H, const HeadOperand& a, const HeadOperand& b,
                           const HeadOperand& c) {
  const bool heads_batched = H >= B;
  call.batch = heads_batched ? H : B;
  call.strideA = heads_batched ? a.head : a.sample;
  call.strideB = heads_batched ? b.head : b.sample;
  call.strideC = heads_batched ? c.head : c.sample;
  return GemmPlan{call,
                  a.offset,
                  b.offset,
                  c.offset,
                  heads_batched ? B : H,
                  heads_batched ? a.sample : a.head,
                  heads_batched ? b.sample : b.head,
                  heads_batched ? c.sample : c.head};
}

}  // namespace gemm_detail

// ---------------------------------------------------------------------------------------------
// Linear layer: inp [N, IC], w [OC, IC], out [N, OC] (kernels/cpu/matmul.h)

// out = inp w^T (beta 0; the bias is added after).   A = w, B = inp, C = out.
inline GemmPlan matmul_forward_plan(int N, int IC, int OC) {
  return gemm_detail::alone(gemm_detail::single(true, false, OC, N, IC, IC, IC, OC, 1.0f, 0.0f));
}

// dinp += dout w.   A = w, B = dout, C = dinp.
inline GemmPlan matmul_dinp_plan(int N, int IC, int OC) {
  return gemm_detail::alone(gemm_detail::single(false, false, IC, N, OC, IC, OC, IC, 1.0f, 1.0f));
}

// dw += dout^T inp.   A = inp, B = dout, C = dw.
inline GemmPlan matmul_dw_plan(int N, int IC, int OC) {
  return gemm_detail::alone(gemm_detail::single(false, true, IC, OC, N, IC, OC, IC, 1.0f, 1.0f));
}

// bf16 mode (GemmPrecision::Bf16): the three plans above run on bfloat16 copies of A and B
// (cublasGemmEx, CUDA_R_16BF inputs, fp32 C and compute). Two device buffers of bf16 bits hold
// the copies: `a` the A operand of the plan being issued (w, then inp for dw: a buffer is
// refilled only after the GEMM that read it, in stream order), `b` the B operand (inp forward,
// dout for both backward plans, converted once).
struct Bf16Buffers {
  uint16_t* a;
  uint16_t* b;
};

// Elements each buffer needs for forward and backward of a layer: a max(OC IC, N IC),
// b max(N IC, N OC).
struct Bf16BufferSizes {
  size_t a, b;
};
inline Bf16BufferSizes matmul_bf16_buffer_sizes(int N, int IC, int OC) {
  const size_t n = static_cast<size_t>(N), ic = static_cast<size_t>(IC);
  const size_t oc = static_cast<size_t>(OC);
  return Bf16BufferSizes{std::max(oc * ic, n * ic), std::max(n * ic, n * oc)};
}

// ---------------------------------------------------------------------------------------------
// Attention (kernels/common/attention_args.h states the layouts), per (sample b, head h) with
// hs = C / H: Q [Tq, hs] is a column block of q (ld ldq), K and V [Tk, hs] column blocks of kv
// (ld ldkv; V starts at column C), Y / dY [Tq, hs] column blocks of out / dout (ld C),
// P / dP / dS [Tq, Tk] the (b, h) planes of att / datt (ld Tk). dq and dkv have the layouts of
// q and kv. `scale` is 1 / sqrt(hs). Every plan covers all B * H pairs and every key: the
// masks are the softmax's business (it leaves exact zeros where a key is not seen).

// att = scale Q K^T.   A = kv, B = q, C = att.
inline GemmPlan attention_scores_plan(const AttentionDims& d, float scale) {
  using namespace gemm_detail;
  const int hs = d.C / d.H;
  return over_heads(single(true, false, d.Tk, d.Tq, hs, d.ldkv, d.ldq, d.Tk, scale, 0.0f), d.B, d.H,
                    k_rows(d), q_rows(d), probs(d));
}

// out = P V, P the (dropped-out) probabilities.   A = kv, B = P [B, H, Tq, Tk], C = out.
inline GemmPlan attention_context_plan(const AttentionDims& d) {
  using namespace gemm_detail;
  const int hs = d.C / d.H;
  return over_heads(single(false, false, hs, d.Tq, d.Tk, d.ldkv, d.Tk, d.C, 1.0f, 0.0f), d.B, d.H,
                    v_rows(d), probs(d), heads_out(d));
}

// datt = dY V^T, the gradient w.r.t. the dropped-out probabilities.
// A = kv, B = dout, C = datt.
inline GemmPlan attention_dprobs_plan(const AttentionDims& d) {
  using namespace gemm_detail;
  const int hs = d.C / d.H;
  return over_heads(single(true, false, d.Tk, d.Tq, hs, d.ldkv, d.C, d.Tk, 1.0f, 0.0f), d.B, d.H,
                    v_rows(d), heads_out(d), probs(d));
}

// dV += P^T dY, P the (dropped-out) probabilities.   A = dout, B = P [B, H, Tq, Tk], C = dkv.
inline GemmPlan attention_dv_plan(const AttentionDims& d) {
  using namespace gemm_detail;
  const int hs = d.C / d.H;
  return over_heads(single(false, true, hs, d.Tk, d.Tq, d.C, d.Tk, d.ldkv, 1.0f, 1.0f), d.B, d.H,
                    heads_out(d), probs(d), v_rows(d));
}

// dQ += scale dS K.   A = kv, B = dS [B, H, Tq, Tk], C = dq.
inline GemmPlan attention_dq_plan(const AttentionDims& d, float scale) {
  using namespace gemm_detail;
  const int hs = d.C / d.H;
  return over_heads(single(false, false, hs, d.Tq, d.Tk, d.ldkv, d.Tk, d.ldq, scale, 1.0f), d.B,
                    d.H, k_rows(d), probs(d), q_rows(d));
}

// dK += scale dS^T Q.   A = q, B = dS [B, H, Tq, Tk], C = dkv.
inline GemmPlan attention_dk_plan(const AttentionDims& d, float scale) {
  using namespace gemm_detail;
  const int hs = d.C / d.H;
  return over_heads(single(false, true, hs, d.Tk, d.Tq, d.ldq, d.Tk, d.ldkv, scale, 1.0f), d.B, d.H,
                    q_rows(d), probs(d), k_rows(d));
}

}  // namespace ph::cuda
