// The cuBLAS plans of the CUDA backend (kernels/cuda/gemm_plan.h), run on the CPU through a
// reference of cuBLAS's column-major semantics on row-major buffers, against the CPU backend's
// matmul and straightforward loops over the fused qkv layout of attention.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <ostream>
#include <random>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/gemm_plan.h"
#include "tests/cuda_gemm_reference.h"

#include "tests/random_data.h"

namespace ph {
namespace {

using testing::FVec;
using testing::run_plan_reference;

using testing::random_floats;

// max |got - ref| / max(1, max |ref|)
double rel_err(const FVec& got, const std::vector<double>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double num = 0.0, den = 1.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, std::fabs(got[i] - ref[i]));
    den = std::max(den, std::fabs(ref[i]));
  }
  return num / den;
}
double rel_err(const FVec& got, const FVec& ref) {
  return rel_err(got, std::vector<double>(ref.begin(), ref.end()));
}

constexpr double kTol = 1e-5;

// ---------------------------------------------------------------------------------------------
// matmul

struct MatmulShape {
  int N, IC, OC;
};

void PrintTo(const MatmulShape& s, std::ostream* os) {
  *os << "N " << s.N << " IC " << s.IC << " OC " << s.OC;
}

class MatmulPlan : public ::testing::TestWithParam<MatmulShape> {};

TEST_P(MatmulPlan, ForwardMatchesCpu) {
  const auto [N, IC, OC] = GetParam();
  const FVec inp = random_floats(static_cast<size_t>(N) * IC, 1);
  const FVec w = random_floats(static_cast<size_t>(OC) * IC, 2);
  const FVec bias = random_floats(static_cast<size_t>(OC), 3);
  FVec ref(static_cast<size_t>(N) * OC);
  cpu::matmul_forward(ref.data(), inp.data(), w.data(), bias.data(), N, IC, OC);
  FVec out(ref.size(), NAN);  // beta 0: the old contents must not be read
  run_plan_reference(cuda::matmul_forward_plan(N, IC, OC), w, inp, out);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) out[static_cast<size_t>(n) * OC + o] += bias[o];
  }
  EXPECT_LT(rel_err(out, ref), kTol);
}

TEST_P(MatmulPlan, BackwardAccumulatesLikeCpu) {
  const auto [N, IC, OC] = GetParam();
  const FVec inp = random_floats(static_cast<size_t>(N) * IC, 4);
  const FVec w = random_floats(static_cast<size_t>(OC) * IC, 5);
  const FVec dout = random_floats(static_cast<size_t>(N) * OC, 6);
  const FVec dinp0 = random_floats(inp.size(), 7);
  const FVec dw0 = random_floats(w.size(), 8);
  FVec dinp_ref = dinp0, dw_ref = dw0;
  cpu::matmul_backward(dinp_ref.data(), dw_ref.data(), nullptr, dout.data(), inp.data(), w.data(),
                       N, IC, OC);
  FVec dinp = dinp0, dw = dw0;
  run_plan_reference(cuda::matmul_dinp_plan(N, IC, OC), w, dout, dinp);
  run_plan_reference(cuda::matmul_dw_plan(N, IC, OC), inp, dout, dw);
  EXPECT_LT(rel_err(dinp, dinp_ref), kTol);
  EXPECT_LT(rel_err(dw, dw_ref), kTol);
}

INSTANTIATE_TEST_SUITE_P(Shapes, MatmulPlan,
                         ::testing::Values(MatmulShape{1, 1, 1}, MatmulShape{7, 5, 3},
                                           MatmulShape{3, 17, 29}, MatmulShape{13, 33, 1},
                                           MatmulShape{300, 24, 40}));

TEST(MatmulPlanArguments, AsDocumented) {
  // N = 6 rows, IC = 4, OC = 3: out^T [3, 6] = w [3, 4] . inp^T [4, 6].
  const cuda::GemmCall f = cuda::matmul_forward_plan(6, 4, 3).call;
  EXPECT_TRUE(f.transa);
  EXPECT_FALSE(f.transb);
  EXPECT_EQ(f.m, 3);
  EXPECT_EQ(f.n, 6);
  EXPECT_EQ(f.k, 4);
  EXPECT_EQ(f.lda, 4);
  EXPECT_EQ(f.ldb, 4);
  EXPECT_EQ(f.ldc, 3);
  EXPECT_EQ(f.batch, 1);
  EXPECT_EQ(f.beta, 0.0f);
  const cuda::GemmCall dw = cuda::matmul_dw_plan(6, 4, 3).call;
  EXPECT_FALSE(dw.transa);
  EXPECT_TRUE(dw.transb);
  EXPECT_EQ(dw.m, 4);
  EXPECT_EQ(dw.n, 3);
  EXPECT_EQ(dw.k, 6);
  EXPECT_EQ(dw.beta, 1.0f);
}

// ---------------------------------------------------------------------------------------------
// attention

struct AttentionShape {
  int B, T, C, H;
};

void PrintTo(const AttentionShape& s, std::ostream* os) {
  *os << "B " << s.B << " T " << s.T << " C " << s.C << " H " << s.H;
}

// Straightforward loops over the fused layout, per (sample, head).
struct HeadLoops {
  int B, T, C, H;
  int hs() const { return C / H; }
  // Element d of head h of part (0 = q, 1 = k, 2 = v) of token t of sample b in qkv [B, T, 3C].
  size_t qkv(int b, int t, int part, int h, int d) const {
    return (static_cast<size_t>(b) * T + t) * 3 * C + static_cast<size_t>(part) * C + h * hs() + d;
  }
  size_t out(int b, int t, int h, int d) const {
    return (static_cast<size_t>(b) * T + t) * C + h * hs() + d;
  }
  size_t att(int b, int h, int i, int j) const {
    return ((static_cast<size_t>(b) * H + h) * T + i) * T + j;
  }
  size_t qkv_size() const { return static_cast<size_t>(B) * T * 3 * C; }
  size_t out_size() const { return static_cast<size_t>(B) * T * C; }
  size_t att_size() const { return static_cast<size_t>(B) * H * T * T; }

  // Calls f(b, h) for every pair.
  template <class F>
  void each_head(F f) const {
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) f(b, h);
    }
  }
};

class AttentionPlan : public ::testing::TestWithParam<AttentionShape> {
 protected:
  HeadLoops L() const {
    const auto [B, T, C, H] = GetParam();
    return HeadLoops{B, T, C, H};
  }
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(L().hs())); }
};

TEST_P(AttentionPlan, Scores) {
  const HeadLoops L = this->L();
  const FVec qkv = random_floats(L.qkv_size(), 11);
  std::vector<double> ref(L.att_size());
  L.each_head([&](int b, int h) {
    for (int i = 0; i < L.T; ++i) {
      for (int j = 0; j < L.T; ++j) {
        double s = 0.0;
        for (int d = 0; d < L.hs(); ++d) s += qkv[L.qkv(b, i, 0, h, d)] * qkv[L.qkv(b, j, 1, h, d)];
        ref[L.att(b, h, i, j)] = s * scale();
      }
    }
  });
  FVec att(L.att_size(), NAN);
  run_plan_reference(cuda::attention_scores_plan(L.B, L.T, L.C, L.H, scale()), qkv, qkv, att);
  EXPECT_LT(rel_err(att, ref), kTol);
}

TEST_P(AttentionPlan, Context) {
  const HeadLoops L = this->L();
  const FVec qkv = random_floats(L.qkv_size(), 12);
  const FVec P = random_floats(L.att_size(), 13);
  std::vector<double> ref(L.out_size());
  L.each_head([&](int b, int h) {
    for (int i = 0; i < L.T; ++i) {
      for (int d = 0; d < L.hs(); ++d) {
        double y = 0.0;
        for (int j = 0; j < L.T; ++j) y += P[L.att(b, h, i, j)] * qkv[L.qkv(b, j, 2, h, d)];
        ref[L.out(b, i, h, d)] = y;
      }
    }
  });
  FVec out(L.out_size(), NAN);
  run_plan_reference(cuda::attention_context_plan(L.B, L.T, L.C, L.H), qkv, P, out);
  EXPECT_LT(rel_err(out, ref), kTol);
}

TEST_P(AttentionPlan, GradientOfProbabilities) {
  const HeadLoops L = this->L();
  const FVec qkv = random_floats(L.qkv_size(), 14);
  const FVec dout = random_floats(L.out_size(), 15);
  std::vector<double> ref(L.att_size());
  L.each_head([&](int b, int h) {
    for (int i = 0; i < L.T; ++i) {
      for (int j = 0; j < L.T; ++j) {
        double g = 0.0;
        for (int d = 0; d < L.hs(); ++d) g += dout[L.out(b, i, h, d)] * qkv[L.qkv(b, j, 2, h, d)];
        ref[L.att(b, h, i, j)] = g;
      }
    }
  });
  FVec datt(L.att_size(), NAN);
  run_plan_reference(cuda::attention_dprobs_plan(L.B, L.T, L.C, L.H), qkv, dout, datt);
  EXPECT_LT(rel_err(datt, ref), kTol);
}

// dV, dQ and dK accumulate into one dqkv that starts non-zero: each plan must add its own
// third and leave the other two as they were.
TEST_P(AttentionPlan, GradientsOfQkvAccumulate) {
  const HeadLoops L = this->L();
  const FVec qkv = random_floats(L.qkv_size(), 16);
  const FVec dout = random_floats(L.out_size(), 17);
  const FVec P = random_floats(L.att_size(), 18);
  const FVec dS = random_floats(L.att_size(), 19);
  const FVec dqkv0 = random_floats(L.qkv_size(), 20);
  const double s = scale();
  for (int part = 0; part < 3; ++part) {
    std::vector<double> ref(dqkv0.begin(), dqkv0.end());
    L.each_head([&](int b, int h) {
      for (int t = 0; t < L.T; ++t) {
        for (int d = 0; d < L.hs(); ++d) {
          double g = 0.0;
          for (int u = 0; u < L.T; ++u) {
            if (part == 0) g += s * dS[L.att(b, h, t, u)] * qkv[L.qkv(b, u, 1, h, d)];
            if (part == 1) g += s * dS[L.att(b, h, u, t)] * qkv[L.qkv(b, u, 0, h, d)];
            if (part == 2) g += P[L.att(b, h, u, t)] * dout[L.out(b, u, h, d)];
          }
          ref[L.qkv(b, t, part, h, d)] += g;
        }
      }
    });
    FVec dqkv = dqkv0;
    if (part == 0) {
      run_plan_reference(cuda::attention_dq_plan(L.B, L.T, L.C, L.H, scale()), qkv, dS, dqkv);
    } else if (part == 1) {
      run_plan_reference(cuda::attention_dk_plan(L.B, L.T, L.C, L.H, scale()), qkv, dS, dqkv);
    } else {
      run_plan_reference(cuda::attention_dv_plan(L.B, L.T, L.C, L.H), dout, P, dqkv);
    }
    EXPECT_LT(rel_err(dqkv, ref), kTol) << "part " << part;
  }
}

// H > B batches the heads, B > H the samples; odd head sizes, one head, one token.
INSTANTIATE_TEST_SUITE_P(Shapes, AttentionPlan,
                         ::testing::Values(AttentionShape{1, 1, 4, 1}, AttentionShape{2, 5, 12, 3},
                                           AttentionShape{5, 3, 6, 2}, AttentionShape{3, 7, 15, 3},
                                           AttentionShape{4, 4, 8, 4}, AttentionShape{1, 9, 7, 7},
                                           AttentionShape{3, 6, 10, 1}));

TEST(AttentionPlanArguments, BatchesTheLargerOfSamplesAndHeads) {
  // B = 2, T = 5, C = 12, H = 3 (hs 4): the three heads of a sample are one strided batch
  // (stride hs in qkv, T*T in att), repeated for each sample.
  const cuda::GemmPlan s = cuda::attention_scores_plan(2, 5, 12, 3, 0.5f);
  EXPECT_TRUE(s.call.transa);
  EXPECT_FALSE(s.call.transb);
  EXPECT_EQ(s.call.m, 5);
  EXPECT_EQ(s.call.n, 5);
  EXPECT_EQ(s.call.k, 4);
  EXPECT_EQ(s.call.lda, 36);
  EXPECT_EQ(s.call.ldb, 36);
  EXPECT_EQ(s.call.ldc, 5);
  EXPECT_EQ(s.call.batch, 3);
  EXPECT_EQ(s.call.strideA, 4);
  EXPECT_EQ(s.call.strideC, 25);
  EXPECT_EQ(s.call.alpha, 0.5f);
  EXPECT_EQ(s.offsetA, 12);  // K
  EXPECT_EQ(s.offsetB, 0);   // Q
  EXPECT_EQ(s.outer, 2);
  EXPECT_EQ(s.outer_strideA, 5 * 36);
  EXPECT_EQ(s.outer_strideC, 3 * 25);
  // B = 8 > H = 3: the eight samples are the batch, repeated for each head.
  const cuda::GemmPlan t = cuda::attention_scores_plan(8, 5, 12, 3, 0.5f);
  EXPECT_EQ(t.call.batch, 8);
  EXPECT_EQ(t.call.strideA, 5 * 36);
  EXPECT_EQ(t.call.strideC, 3 * 25);
  EXPECT_EQ(t.outer, 3);
  EXPECT_EQ(t.outer_strideA, 4);
  EXPECT_EQ(t.outer_strideC, 25);
}

}  // namespace
}  // namespace ph
