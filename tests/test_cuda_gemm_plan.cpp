// The cuBLAS plans of the CUDA backend (kernels/cuda/gemm_plan.h), run on the CPU through a
// reference of cuBLAS's column-major semantics on row-major buffers, against the CPU backend's
// matmul and straightforward loops over the layouts of attention (fused q|k|v self-attention,
// and separate q and kv with Tq != Tk and row strides wider than the data).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <ostream>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/attention_args.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/gemm_plan.h"
#include "tests/attention_case.h"
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

// One call's layout (tests/attention_case.h: q at 0 and kv at kv_offset() of one buffer x,
// fused self-attention or cross-attention with pad columns), with straightforward loops over
// it per (sample, head).
struct PlanCase : test::AttentionShape {
  std::string name;

  template <class F>
  void each_head(F f) const {
    for (int b = 0; b < B; ++b) {
      for (int h = 0; h < H; ++h) f(b, h);
    }
  }
  float scale() const { return 1.0f / std::sqrt(static_cast<float>(hs())); }
  const float* kv(const FVec& x) const { return x.data() + kv_offset(); }
  float* kv(FVec& x) const { return x.data() + kv_offset(); }
};

void PrintTo(const PlanCase& c, std::ostream* os) {
  *os << c.name;
}

PlanCase plan_case(std::string name, int B, int Tq, int Tk, int C, int H, bool fused, int q_pad = 0,
                   int kv_pad = 0) {
  PlanCase c;
  c.name = std::move(name);
  c.B = B;
  c.Tq = Tq;
  c.Tk = Tk;
  c.C = C;
  c.H = H;
  c.fused = fused;
  c.q_pad = q_pad;
  c.kv_pad = kv_pad;
  return c;
}

class AttentionPlan : public ::testing::TestWithParam<PlanCase> {};

TEST_P(AttentionPlan, Scores) {
  const PlanCase& L = GetParam();
  FVec x = random_floats(L.x_size(), 11);
  std::vector<double> ref(L.att_size());
  L.each_head([&](int b, int h) {
    for (int i = 0; i < L.Tq; ++i) {
      for (int j = 0; j < L.Tk; ++j) {
        double s = 0.0;
        for (int d = 0; d < L.hs(); ++d) s += x[L.q_index(b, i, h, d)] * x[L.k_index(b, j, h, d)];
        ref[L.att_index(b, h, i, j)] = s * L.scale();
      }
    }
  });
  FVec att(L.att_size(), NAN);
  const testing::ReferenceGemm gemm({&x, &att});
  gemm(cuda::attention_scores_plan(L.dims(), L.scale()), L.kv(x), x.data(), att.data());
  EXPECT_LT(rel_err(att, ref), kTol);
}

TEST_P(AttentionPlan, Context) {
  const PlanCase& L = GetParam();
  FVec x = random_floats(L.x_size(), 12);
  FVec P = random_floats(L.att_size(), 13);
  std::vector<double> ref(L.out_size());
  L.each_head([&](int b, int h) {
    for (int i = 0; i < L.Tq; ++i) {
      for (int d = 0; d < L.hs(); ++d) {
        double y = 0.0;
        for (int j = 0; j < L.Tk; ++j) y += P[L.att_index(b, h, i, j)] * x[L.v_index(b, j, h, d)];
        ref[L.out_index(b, i, h, d)] = y;
      }
    }
  });
  FVec out(L.out_size(), NAN);
  const testing::ReferenceGemm gemm({&x, &P, &out});
  gemm(cuda::attention_context_plan(L.dims()), L.kv(x), P.data(), out.data());
  EXPECT_LT(rel_err(out, ref), kTol);
}

TEST_P(AttentionPlan, GradientOfProbabilities) {
  const PlanCase& L = GetParam();
  FVec x = random_floats(L.x_size(), 14);
  FVec dout = random_floats(L.out_size(), 15);
  std::vector<double> ref(L.att_size());
  L.each_head([&](int b, int h) {
    for (int i = 0; i < L.Tq; ++i) {
      for (int j = 0; j < L.Tk; ++j) {
        double g = 0.0;
        for (int d = 0; d < L.hs(); ++d)
          g += dout[L.out_index(b, i, h, d)] * x[L.v_index(b, j, h, d)];
        ref[L.att_index(b, h, i, j)] = g;
      }
    }
  });
  FVec datt(L.att_size(), NAN);
  const testing::ReferenceGemm gemm({&x, &dout, &datt});
  gemm(cuda::attention_dprobs_plan(L.dims()), L.kv(x), dout.data(), datt.data());
  EXPECT_LT(rel_err(datt, ref), kTol);
}

// dQ, dK and dV accumulate into one dx (layout of x) that starts non-zero: each plan must add
// its own part and leave everything else as it was, pad columns included.
TEST_P(AttentionPlan, GradientsAccumulate) {
  const PlanCase& L = GetParam();
  FVec x = random_floats(L.x_size(), 16);
  FVec dout = random_floats(L.out_size(), 17);
  FVec P = random_floats(L.att_size(), 18);
  FVec dS = random_floats(L.att_size(), 19);
  const FVec dx0 = random_floats(L.x_size(), 20);
  const double s = L.scale();
  for (int part = 0; part < 3; ++part) {
    std::vector<double> ref(dx0.begin(), dx0.end());
    L.each_head([&](int b, int h) {
      for (int d = 0; d < L.hs(); ++d) {
        if (part == 0) {
          for (int i = 0; i < L.Tq; ++i) {
            double g = 0.0;
            for (int j = 0; j < L.Tk; ++j)
              g += s * dS[L.att_index(b, h, i, j)] * x[L.k_index(b, j, h, d)];
            ref[L.q_index(b, i, h, d)] += g;
          }
          continue;
        }
        for (int j = 0; j < L.Tk; ++j) {
          double g = 0.0;
          for (int i = 0; i < L.Tq; ++i) {
            g += part == 1 ? s * dS[L.att_index(b, h, i, j)] * x[L.q_index(b, i, h, d)]
                           : P[L.att_index(b, h, i, j)] * dout[L.out_index(b, i, h, d)];
          }
          ref[part == 1 ? L.k_index(b, j, h, d) : L.v_index(b, j, h, d)] += g;
        }
      }
    });
    FVec dx = dx0;
    const testing::ReferenceGemm gemm({&x, &dout, &P, &dS, &dx});
    if (part == 0) {
      gemm(cuda::attention_dq_plan(L.dims(), L.scale()), L.kv(x), dS.data(), dx.data());
    } else if (part == 1) {
      gemm(cuda::attention_dk_plan(L.dims(), L.scale()), x.data(), dS.data(), L.kv(dx));
    } else {
      gemm(cuda::attention_dv_plan(L.dims()), dout.data(), P.data(), L.kv(dx));
    }
    EXPECT_LT(rel_err(dx, ref), kTol) << "part " << part;
    const std::vector<bool> used = L.used();
    for (size_t e = 0; e < dx.size(); ++e) {
      if (!used[e]) {
        ASSERT_EQ(dx[e], dx0[e]) << "pad column " << e << ", part " << part;
      }
    }
  }
}

// H > B batches the heads, B > H the samples; odd head sizes, one head, one token; cross
// layouts with fewer and more queries than keys and pad columns.
INSTANTIATE_TEST_SUITE_P(Shapes, AttentionPlan,
                         ::testing::Values(plan_case("one", 1, 1, 1, 4, 1, true),
                                           plan_case("fused", 2, 5, 5, 12, 3, true),
                                           plan_case("samples", 5, 3, 3, 6, 2, true),
                                           plan_case("odd", 3, 7, 7, 15, 3, true),
                                           plan_case("square", 4, 4, 4, 8, 4, true),
                                           plan_case("heads", 1, 9, 9, 7, 7, true),
                                           plan_case("one head", 3, 6, 6, 10, 1, true),
                                           plan_case("cross short", 2, 3, 7, 12, 3, false, 2, 3),
                                           plan_case("cross long", 5, 6, 2, 6, 2, false, 1, 0),
                                           plan_case("cross one key", 3, 4, 1, 10, 5, false, 0, 5)),
                         [](const ::testing::TestParamInfo<PlanCase>& param) {
                           std::string n = param.param.name;
                           std::replace(n.begin(), n.end(), ' ', '_');
                           return n;
                         });

TEST(AttentionPlanArguments, BatchesTheLargerOfSamplesAndHeads) {
  // Fused self-attention, B = 2, T = 5, C = 12, H = 3 (hs 4): the three heads of a sample are
  // one strided batch (stride hs in q and kv, Tq*Tk in att), repeated for each sample.
  AttentionDims d;
  d.B = 2;
  d.Tq = d.Tk = 5;
  d.C = 12;
  d.H = 3;
  d.ldq = d.ldkv = 36;
  const cuda::GemmPlan s = cuda::attention_scores_plan(d, 0.5f);
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
  EXPECT_EQ(s.offsetA, 0);  // K, at the start of kv
  EXPECT_EQ(s.offsetB, 0);  // Q
  EXPECT_EQ(s.outer, 2);
  EXPECT_EQ(s.outer_strideA, 5 * 36);
  EXPECT_EQ(s.outer_strideC, 3 * 25);
  // V sits C columns into kv.
  EXPECT_EQ(cuda::attention_context_plan(d).offsetA, 12);
  // B = 8 > H = 3: the eight samples are the batch, repeated for each head.
  d.B = 8;
  const cuda::GemmPlan t = cuda::attention_scores_plan(d, 0.5f);
  EXPECT_EQ(t.call.batch, 8);
  EXPECT_EQ(t.call.strideA, 5 * 36);
  EXPECT_EQ(t.call.strideC, 3 * 25);
  EXPECT_EQ(t.outer, 3);
  EXPECT_EQ(t.outer_strideA, 4);
  EXPECT_EQ(t.outer_strideC, 25);
  // Cross-attention, Tq = 3 queries of q [B*3, 12], Tk = 7 keys of kv [B*7, 24]: scores
  // [Tq, Tk] per head, k read with ld 24, q with ld 12.
  d.B = 2;
  d.Tq = 3;
  d.Tk = 7;
  d.ldq = 12;
  d.ldkv = 24;
  const cuda::GemmPlan c = cuda::attention_scores_plan(d, 0.5f);
  EXPECT_EQ(c.call.m, 7);
  EXPECT_EQ(c.call.n, 3);
  EXPECT_EQ(c.call.lda, 24);
  EXPECT_EQ(c.call.ldb, 12);
  EXPECT_EQ(c.call.ldc, 7);
  EXPECT_EQ(c.call.strideC, 21);
  EXPECT_EQ(c.outer_strideA, 7 * 24);
  EXPECT_EQ(c.outer_strideB, 3 * 12);
}

}  // namespace
}  // namespace ph
