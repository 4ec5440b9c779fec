// CPU kernels against straightforward double-precision references, finite differences,
// op-specific contracts, and bit-exactness across OpenMP thread counts: the common helpers
// (Philox, activations' formulas, normal init, fast exp), dropout, embedding and LayerNorm. The
// linear layer, cross-entropy, element-wise ops and row gathers are in test_kernel_dense.cpp;
// attention (test_kernel_attention.cpp), label smoothing (test_kernel_label_smoothing.cpp) and
// the optimizer (test_kernel_optimizer.cpp) have their own files.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numbers>
#include <vector>

#include "kernels/common/activations.h"
#include "kernels/common/dropout_mask.h"
#include "kernels/common/init_normal.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/dropout_scales.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/layernorm.h"
#include "tests/reference_checks.h"

namespace ph {
namespace {

using testing::added;
using testing::bit_equal;
using testing::fd_grad;
using testing::FVec;
using testing::kFdTol;
using testing::kTol;
using testing::random_floats;
using testing::rel_err;
using testing::to_double;
using testing::Vec;
using testing::with_threads;

// ---------------------------------------------------------------------------------------------
// kernels/common

TEST(Philox, KnownAnswerVectors) {
  // Random123 known-answer tests for Philox4x32-10.
  const Philox4 zero = philox4x32(0, 0, 0, 0, 0, 0);
  EXPECT_EQ(zero.v[0], 0x6627e8d5u);
  EXPECT_EQ(zero.v[1], 0xe169c58du);
  EXPECT_EQ(zero.v[2], 0xbc57ac4cu);
  EXPECT_EQ(zero.v[3], 0x9b00dbd8u);
  const uint32_t f = 0xffffffffu;
  const Philox4 ones = philox4x32(f, f, f, f, f, f);
  EXPECT_EQ(ones.v[0], 0x408f276du);
  EXPECT_EQ(ones.v[1], 0x41c83b0eu);
  EXPECT_EQ(ones.v[2], 0xa20bc7c6u);
  EXPECT_EQ(ones.v[3], 0x6d5451fdu);
  const Philox4 pi =
      philox4x32(0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u, 0xa4093822u, 0x299f31d0u);
  EXPECT_EQ(pi.v[0], 0xd16cfe09u);
  EXPECT_EQ(pi.v[1], 0x94fdccebu);
  EXPECT_EQ(pi.v[2], 0x5001e420u);
  EXPECT_EQ(pi.v[3], 0x24126ea1u);
}

TEST(Philox, BitsAreOneBlockWordPerElement) {
  const uint64_t seed = 0x123456789abcdefull;
  for (uint64_t index : {uint64_t{0}, uint64_t{5}, uint64_t{1} << 35}) {
    const uint64_t g = index >> 2;
    const Philox4 r = philox4x32(static_cast<uint32_t>(g), static_cast<uint32_t>(g >> 32), 7, 9,
                                 static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
    EXPECT_EQ(philox_bits(seed, 7, 9, index), r.v[index & 3]);
  }
  EXPECT_EQ(uniform_from_bits(0), 0.0f);
  EXPECT_LT(uniform_from_bits(0xffffffffu), 1.0f);
}

TEST(Activations, GeluMatchesFormulaAndGradMatchesFiniteDifferences) {
  auto gelu_d = [](double x) {
    return 0.5 * x *
           (1.0 + std::tanh(std::sqrt(2.0 / std::numbers::pi) * (x + 0.044715 * x * x * x)));
  };
  for (double x = -6.0; x <= 6.0; x += 0.173) {
    const float xf = static_cast<float>(x);
    const double ref = gelu_d(xf);
    EXPECT_NEAR(gelu(xf), ref, 1e-6 * std::max(1.0, std::fabs(ref))) << x;
    const double h = 1e-5;
    const double fd = (gelu_d(xf + h) - gelu_d(xf - h)) / (2 * h);
    EXPECT_NEAR(gelu_grad(xf), fd, 2e-6) << x;
  }
  EXPECT_EQ(relu(-1.5f), 0.0f);
  EXPECT_EQ(relu(2.5f), 2.5f);
  EXPECT_EQ(relu_grad(-1.0f), 0.0f);
  EXPECT_EQ(relu_grad(1.0f), 1.0f);
}

TEST(InitNormal, MomentsOfAStandardNormal) {
  const int n = 200000;
  double s1 = 0, s2 = 0, s3 = 0, s4 = 0;
  const uint32_t name = hash_name("h.0.attn.q.weight");
  for (int i = 0; i < n; ++i) {
    const double x = normal_at(42, name, static_cast<uint64_t>(i));
    ASSERT_TRUE(std::isfinite(x));
    s1 += x;
    s2 += x * x;
    s3 += x * x * x;
    s4 += x * x * x * x;
  }
  const double mean = s1 / n, var = s2 / n - mean * mean;
  EXPECT_NEAR(mean, 0.0, 4.0 / std::sqrt(n));           // sd of the mean: 1/sqrt(n)
  EXPECT_NEAR(var, 1.0, 4.0 * std::sqrt(2.0 / n));      // sd of the variance: sqrt(2/n)
  EXPECT_NEAR(s3 / n, 0.0, 4.0 * std::sqrt(15.0 / n));  // skewness, sd sqrt(15/n)
  EXPECT_NEAR(s4 / n, 3.0, 4.0 * std::sqrt(96.0 / n));  // kurtosis, sd sqrt(96/n)
  // A pure function of (seed, name, index): any shard reproduces the same element.
  EXPECT_EQ(normal_at(42, name, 12345), normal_at(42, name, 12345));
  EXPECT_NE(normal_at(42, name, 12345), normal_at(43, name, 12345));
  EXPECT_NE(normal_at(42, name, 12345), normal_at(42, hash_name("wte"), 12345));
}

TEST(FastExp, WithinTwoUlpAndSpecialValues) {
  for (double x = -86.5; x < 88.7; x += 0.01237) {
    const float xf = static_cast<float>(x);
    const float ref = static_cast<float>(std::exp(static_cast<double>(xf)));
    const float ulp = std::nextafter(ref, std::numeric_limits<float>::infinity()) - ref;
    EXPECT_LE(std::fabs(cpu::exp_vec(xf) - ref), 2.0f * ulp) << xf;
  }
  EXPECT_EQ(cpu::exp_vec(0.0f), 1.0f);
  EXPECT_EQ(cpu::exp_vec(-std::numeric_limits<float>::infinity()), 0.0f);
  EXPECT_EQ(cpu::exp_vec(-100.0f), 0.0f);
  EXPECT_TRUE(std::isinf(cpu::exp_vec(89.0f)));
  EXPECT_TRUE(std::isnan(cpu::exp_vec(std::numeric_limits<float>::quiet_NaN())));
}

// ---------------------------------------------------------------------------------------------
// dropout

TEST(Dropout, RunScalesEqualPerElementKeep) {
  DropoutSpec d;
  d.p = 0.3f;
  d.seed = 0xfeedbeefcafeull;
  d.step = 17;
  d.site = 4;
  // Runs of 8 blocks (32 elements) and more take the AVX2 path; the last start has the block
  // counter's low word wrap inside such a run (the high word carries).
  for (uint64_t index0 : {uint64_t{0}, uint64_t{1}, uint64_t{2}, uint64_t{3}, uint64_t{1} << 33,
                          (uint64_t{1} << 34) - 37}) {
    for (int n : {0, 1, 3, 4, 7, 31, 32, 35, 64, 101, 260}) {
      FVec s(static_cast<size_t>(n));
      cpu::dropout_scales(s.data(), d, index0, n);
      for (int i = 0; i < n; ++i) {
        const float want =
            dropout_keep(d, index0 + static_cast<uint64_t>(i)) ? dropout_scale(d.p) : 0.0f;
        ASSERT_EQ(s[static_cast<size_t>(i)], want) << index0 << " + " << i;
      }
    }
  }
}

TEST(Dropout, ForwardBackwardAgainstReference) {
  const int rows = 7, cols = 13;
  DropoutSpec d;
  d.p = 0.4f;
  d.seed = 99;
  d.step = 3;
  d.site = 2;
  DropoutBlock blk;  // a plain matrix block: rows 5.. and columns 11.. of a [*, 40] tensor
  blk.sample0 = 5;
  blk.col0 = 11;
  blk.global_cols = 40;
  const FVec x = random_floats(rows * cols, 1);
  FVec y(x.size()), dx(x.size());
  cpu::dropout_forward(y.data(), x.data(), rows, cols, d, blk);
  cpu::dropout_backward(dx.data(), x.data(), rows, cols, d, blk);
  Vec ref(x.size());
  int dropped = 0;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const uint64_t idx =
          static_cast<uint64_t>((blk.sample0 + r) * blk.global_cols + blk.col0 + c);
      const bool keep = dropout_keep(d, idx);
      dropped += keep ? 0 : 1;
      ref[static_cast<size_t>(r * cols + c)] =
          keep ? x[static_cast<size_t>(r * cols + c)] / 0.6 : 0;
    }
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(rel_err(y, ref), 1e-6);
  EXPECT_TRUE(bit_equal(dx, y));  // same mask, same scale
  // In place gives the same result.
  FVec z = x;
  cpu::dropout_forward(z.data(), z.data(), rows, cols, d, blk);
  EXPECT_TRUE(bit_equal(z, y));
  // Finite differences of the (linear) reference: d(sum w y)/dx = w * mask * scale.
  const Vec w = to_double(random_floats(x.size(), 2));
  FVec dyw(w.begin(), w.end()), g(x.size());
  cpu::dropout_backward(g.data(), dyw.data(), rows, cols, d, blk);
  const Vec fd = fd_grad(to_double(x), w, [&](const Vec& xv) {
    Vec out(xv.size());
    for (size_t i = 0; i < xv.size(); ++i) out[i] = ref[i] == 0.0 ? 0.0 : xv[i] / 0.6;
    return out;
  });
  EXPECT_LT(rel_err(g, fd), kFdTol);
}

TEST(Dropout, ZeroProbabilityCopiesOrLeavesInPlace) {
  const FVec x = random_floats(50, 3);
  FVec y(50, 7.0f);
  DropoutSpec d;  // p = 0
  DropoutBlock blk;
  blk.global_cols = 10;
  cpu::dropout_forward(y.data(), x.data(), 5, 10, d, blk);
  EXPECT_TRUE(bit_equal(x, y));
  FVec z = x;
  cpu::dropout_backward(z.data(), z.data(), 5, 10, d, blk);
  EXPECT_TRUE(bit_equal(x, z));
}

TEST(Dropout, MaskDependsOnlyOnTheGlobalIndex) {
  const int rows = 6, cols = 10;
  DropoutSpec d;
  d.p = 0.5f;
  d.seed = 5;
  d.step = 1;
  d.site = 3;
  const FVec x = random_floats(rows * cols, 4);
  FVec full(x.size());
  DropoutBlock all;
  all.global_cols = cols;
  cpu::dropout_forward(full.data(), x.data(), rows, cols, d, all);
  // Two row halves (data parallelism) with sample0 offsets (T = T_max = 1: plain rows).
  FVec halves(x.size());
  for (int part = 0; part < 2; ++part) {
    DropoutBlock blk = all;
    blk.sample0 = part * rows / 2;
    const size_t off = static_cast<size_t>(part * rows / 2 * cols);
    cpu::dropout_forward(halves.data() + off, x.data() + off, rows / 2, cols, d, blk);
  }
  EXPECT_TRUE(bit_equal(halves, full));
  // Two column halves (tensor parallelism) with col0 offsets, each a contiguous [rows, 5] block.
  for (int part = 0; part < 2; ++part) {
    FVec in(rows * cols / 2), out(rows * cols / 2);
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols / 2; ++c) in[r * cols / 2 + c] = x[r * cols + part * cols / 2 + c];
    }
    DropoutBlock blk = all;
    blk.col0 = part * cols / 2;
    cpu::dropout_forward(out.data(), in.data(), rows, cols / 2, d, blk);
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < cols / 2; ++c) {
        ASSERT_EQ(out[r * cols / 2 + c], full[r * cols + part * cols / 2 + c]);
      }
    }
  }
  // Another step or site gives another mask.
  FVec other(x.size());
  DropoutSpec d2 = d;
  d2.step = 2;
  cpu::dropout_forward(other.data(), x.data(), rows, cols, d2, all);
  EXPECT_FALSE(bit_equal(other, full));
}

// A block of B samples of T positions each, with T < T_max (a micro-batch padded to less than
// the configured length): position t of sample b draws the bit of element
// ((sample0 + b) T_max + t) global_cols + col0 + c, the bit the full-length call draws there.
TEST(Dropout, ShorterMicroBatchDrawsTheFullLengthBits) {
  const int B = 3, T_max = 7, cols = 6, global_cols = 10;
  DropoutSpec d;
  d.p = 0.5f;
  d.seed = 17;
  d.step = 4;
  d.site = 2;
  DropoutBlock full;
  full.sample0 = 4;
  full.T = T_max;
  full.T_max = T_max;
  full.col0 = 3;
  full.global_cols = global_cols;
  const FVec x = random_floats(static_cast<size_t>(B) * T_max * cols, 9, 0.5f, 1.5f);
  FVec y_full(x.size());
  cpu::dropout_forward(y_full.data(), x.data(), B * T_max, cols, d, full);
  for (const int T : {1, 4, 6}) {
    DropoutBlock part = full;
    part.T = T;
    FVec in(static_cast<size_t>(B) * T * cols), out(in.size()), back(in.size());
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) {
        for (int c = 0; c < cols; ++c) {
          in[(static_cast<size_t>(b) * T + t) * cols + c] =
              x[(static_cast<size_t>(b) * T_max + t) * cols + c];
        }
      }
    }
    cpu::dropout_forward(out.data(), in.data(), B * T, cols, d, part);
    cpu::dropout_backward(back.data(), in.data(), B * T, cols, d, part);
    int dropped = 0;
    for (int b = 0; b < B; ++b) {
      for (int t = 0; t < T; ++t) {
        for (int c = 0; c < cols; ++c) {
          const size_t e = (static_cast<size_t>(b) * T + t) * cols + c;
          const size_t f = (static_cast<size_t>(b) * T_max + t) * cols + c;
          const uint64_t index =
              static_cast<uint64_t>(((full.sample0 + b) * T_max + t) * global_cols + 3 + c);
          ASSERT_EQ(out[e], y_full[f]) << "T " << T << " sample " << b << " position " << t;
          ASSERT_EQ(back[e], y_full[f]);
          ASSERT_EQ(out[e] != 0.0f, dropout_keep(d, index));
          dropped += out[e] == 0.0f ? 1 : 0;
        }
      }
    }
    EXPECT_GT(dropped, 0);
  }
}

TEST(Dropout, KeptFractionAndMeanArePreserved) {
  const int rows = 100, cols = 1000;  // 1e5 elements
  const double n = rows * cols;
  for (float p : {0.1f, 0.5f}) {
    DropoutSpec d;
    d.p = p;
    d.seed = 1234;
    d.step = 77;
    d.site = 1;
    DropoutBlock blk;
    blk.global_cols = cols;
    const FVec ones(rows * cols, 1.0f);
    FVec y(ones.size());
    cpu::dropout_forward(y.data(), ones.data(), rows, cols, d, blk);
    double kept = 0, sum = 0;
    for (float v : y) {
      kept += v != 0.0f ? 1 : 0;
      sum += v;
    }
    const double sd_frac = std::sqrt(p * (1.0 - p) / n);
    EXPECT_NEAR(kept / n, 1.0 - p, 4.0 * sd_frac) << p;
    const double sd_mean = std::sqrt(p / (1.0 - p) / n);  // sd of mean(mask / (1 - p))
    EXPECT_NEAR(sum / n, 1.0, 4.0 * sd_mean) << p;
  }
}

// ---------------------------------------------------------------------------------------------
// embedding

struct EmbeddingCase {
  int B = 2, T = 5, C = 12, vocab_start = 3, V_local = 7;
  float scale = 1.7f;
  std::vector<int32_t> tokens;
  FVec wte, pos;
  EmbeddingCase() {
    // Tokens inside and outside [vocab_start, vocab_start + V_local), some repeated.
    tokens = {3, 4, 9, 0, 12, 4, 4, 2, 10, 5};
    wte = random_floats(static_cast<size_t>(V_local * C), 11);
    pos = random_floats(static_cast<size_t>(T * C), 12);
  }
  Vec forward_ref(const Vec& w, const Vec& p) const {
    Vec out(static_cast<size_t>(B * T * C), 0.0);
    for (int bt = 0; bt < B * T; ++bt) {
      const int row = tokens[bt] - vocab_start;
      for (int c = 0; c < C; ++c) {
        double v = p[(bt % T) * C + c];
        if (row >= 0 && row < V_local) v += scale * w[row * C + c];
        out[bt * C + c] = v;
      }
    }
    return out;
  }
};

TEST(Embedding, ForwardAgainstReferenceAndVocabRange) {
  EmbeddingCase e;
  FVec out(static_cast<size_t>(e.B * e.T * e.C));
  cpu::embedding_forward(out.data(), e.tokens.data(), e.wte.data(), e.pos.data(), e.B, e.T, e.C,
                         e.vocab_start, e.V_local, e.scale);
  EXPECT_LT(rel_err(out, e.forward_ref(to_double(e.wte), to_double(e.pos))), kTol);
  // Without positions, rows of tokens outside the range are exactly zero.
  cpu::embedding_forward(out.data(), e.tokens.data(), e.wte.data(), nullptr, e.B, e.T, e.C,
                         e.vocab_start, e.V_local, e.scale);
  for (int bt = 0; bt < e.B * e.T; ++bt) {
    const int row = e.tokens[bt] - e.vocab_start;
    for (int c = 0; c < e.C; ++c) {
      const float want = row >= 0 && row < e.V_local ? e.scale * e.wte[row * e.C + c] : 0.0f;
      ASSERT_EQ(out[bt * e.C + c], want);
    }
  }
}

TEST(Embedding, BackwardAccumulatesAndMatchesFiniteDifferences) {
  EmbeddingCase e;
  const Vec w = to_double(random_floats(static_cast<size_t>(e.B * e.T * e.C), 13));
  const FVec dout(w.begin(), w.end());
  // dwte gets guard rows past V_local: tokens above the range must not write there.
  const size_t guard = static_cast<size_t>(4 * e.C);
  const FVec dwte_guarded = random_floats(e.wte.size() + guard, 14);
  const FVec dpos0 = random_floats(e.pos.size(), 15);
  FVec dwte_out = dwte_guarded, dpos = dpos0;
  cpu::embedding_backward(dwte_out.data(), dpos.data(), dout.data(), e.tokens.data(), e.B, e.T, e.C,
                          e.vocab_start, e.V_local, e.scale);
  EXPECT_TRUE(std::equal(dwte_out.end() - static_cast<long>(guard), dwte_out.end(),
                         dwte_guarded.end() - static_cast<long>(guard)));
  const FVec dwte0(dwte_guarded.begin(), dwte_guarded.end() - static_cast<long>(guard));
  const FVec dwte(dwte_out.begin(), dwte_out.end() - static_cast<long>(guard));
  const Vec wte = to_double(e.wte), pos = to_double(e.pos);
  const Vec fd_w = fd_grad(wte, w, [&](const Vec& x) { return e.forward_ref(x, pos); });
  const Vec fd_p = fd_grad(pos, w, [&](const Vec& x) { return e.forward_ref(wte, x); });
  EXPECT_LT(rel_err(added(dwte, dwte0), fd_w), kFdTol);
  EXPECT_LT(rel_err(added(dpos, dpos0), fd_p), kFdTol);
  // Tokens 6..8 (rows 3..5 of the local table) do not occur: those rows are untouched.
  for (int c = 3 * e.C; c < 6 * e.C; ++c) EXPECT_EQ(dwte[c], dwte0[c]);
  // Without dpos only dwte changes.
  FVec dwte2 = dwte0;
  cpu::embedding_backward(dwte2.data(), nullptr, dout.data(), e.tokens.data(), e.B, e.T, e.C,
                          e.vocab_start, e.V_local, e.scale);
  EXPECT_TRUE(bit_equal(dwte2, dwte));
}

TEST(Embedding, SinusoidalTableMatchesFormula) {
  for (int C : {12, 7}) {
    const int T = 9;
    FVec table(static_cast<size_t>(T * C));
    cpu::sinusoidal_table(table.data(), T, C);
    for (int t = 0; t < T; ++t) {
      for (int i = 0; 2 * i < C; ++i) {
        const double angle = t / std::pow(10000.0, 2.0 * i / C);
        EXPECT_NEAR(table[t * C + 2 * i], std::sin(angle), 1e-7);
        if (2 * i + 1 < C) {
          EXPECT_NEAR(table[t * C + 2 * i + 1], std::cos(angle), 1e-7);
        }
      }
    }
  }
}

TEST(Embedding, BackwardIsBitExactAcrossThreadCounts) {
  const int B = 4, T = 33, C = 300, V = 50;
  std::vector<int32_t> tokens(B * T);
  for (int i = 0; i < B * T; ++i) tokens[i] = (i * 7) % V;
  const FVec dout = random_floats(static_cast<size_t>(B * T * C), 16);
  FVec dw1(static_cast<size_t>(V * C), 0.5f), dp1(static_cast<size_t>(T * C), 0.25f);
  FVec dw2 = dw1, dp2 = dp1;
  with_threads(1, [&] {
    cpu::embedding_backward(dw1.data(), dp1.data(), dout.data(), tokens.data(), B, T, C, 0, V, 1);
  });
  with_threads(2, [&] {
    cpu::embedding_backward(dw2.data(), dp2.data(), dout.data(), tokens.data(), B, T, C, 0, V, 1);
  });
  EXPECT_TRUE(bit_equal(dw1, dw2));
  EXPECT_TRUE(bit_equal(dp1, dp2));
}

// ---------------------------------------------------------------------------------------------
// layernorm

Vec layernorm_ref(const Vec& x, const Vec& w, const Vec& b, int N, int C, Vec* mean = nullptr,
                  Vec* rstd = nullptr, double eps = 1e-5) {
  Vec out(x.size());
  for (int n = 0; n < N; ++n) {
    double m = 0, v = 0;
    for (int c = 0; c < C; ++c) m += x[n * C + c];
    m /= C;
    for (int c = 0; c < C; ++c) v += (x[n * C + c] - m) * (x[n * C + c] - m);
    const double s = 1.0 / std::sqrt(v / C + eps);
    for (int c = 0; c < C; ++c)
      out[n * C + c] = (x[n * C + c] - m) * s * w[c] + (b.empty() ? 0 : b[c]);
    if (mean) (*mean)[n] = m;
    if (rstd) (*rstd)[n] = s;
  }
  return out;
}

TEST(LayerNorm, ForwardBackwardAgainstReferenceAndFiniteDifferences) {
  const int N = 7, C = 13;
  const FVec x = random_floats(N * C, 21, -2.0f, 3.0f);
  const FVec w = random_floats(C, 22, 0.5f, 1.5f), b = random_floats(C, 23);
  FVec out(x.size()), mean(N), rstd(N);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C);
  Vec mref(N), sref(N);
  const Vec xd = to_double(x), wd = to_double(w), bd = to_double(b);
  EXPECT_LT(rel_err(out, layernorm_ref(xd, wd, bd, N, C, &mref, &sref)), kTol);
  EXPECT_LT(rel_err(mean, mref), kTol);
  EXPECT_LT(rel_err(rstd, sref), kTol);

  const Vec g = to_double(random_floats(x.size(), 24));
  const FVec dout(g.begin(), g.end());
  const FVec dx0 = random_floats(x.size(), 25), dw0 = random_floats(C, 26),
             db0 = random_floats(C, 27);
  FVec dx = dx0, dw = dw0, db = db0;
  cpu::layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(),
                          mean.data(), rstd.data(), N, C);
  const Vec fd_x = fd_grad(xd, g, [&](const Vec& v) { return layernorm_ref(v, wd, bd, N, C); });
  const Vec fd_w = fd_grad(wd, g, [&](const Vec& v) { return layernorm_ref(xd, v, bd, N, C); });
  const Vec fd_b = fd_grad(bd, g, [&](const Vec& v) { return layernorm_ref(xd, wd, v, N, C); });
  EXPECT_LT(rel_err(added(dx, dx0), fd_x), kFdTol);
  EXPECT_LT(rel_err(added(dw, dw0), fd_w), kFdTol);
  EXPECT_LT(rel_err(added(db, db0), fd_b), kFdTol);

  // Without bias: b and db are null.
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), nullptr, N, C);
  EXPECT_LT(rel_err(out, layernorm_ref(xd, wd, {}, N, C)), kTol);
  FVec dx2 = dx0, dw2 = dw0;
  cpu::layernorm_backward(dx2.data(), dw2.data(), nullptr, dout.data(), x.data(), w.data(),
                          mean.data(), rstd.data(), N, C);
  EXPECT_TRUE(bit_equal(dx2, dx));
  EXPECT_TRUE(bit_equal(dw2, dw));
}

// A row of nearly equal values (variance ~3e-7): eps 1e-5 dominates the variance and shrinks
// the output ~6-fold, eps 1e-12 (BERT's) does not. Each must match the reference of its eps.
TEST(LayerNorm, HonoursEps) {
  const int N = 3, C = 64;
  FVec x = random_floats(N * C, 31, -1e-3f, 1e-3f);
  for (float& v : x) v += 1.0f;
  const FVec w(C, 1.0f), b(C, 0.0f);
  const Vec xd = to_double(x), wd = to_double(w), bd = to_double(b);
  FVec out5(x.size()), out12(x.size()), mean(N), rstd(N);
  cpu::layernorm_forward(out5.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C,
                         1e-5f);
  EXPECT_LT(rel_err(out5, layernorm_ref(xd, wd, bd, N, C, nullptr, nullptr, 1e-5)), 1e-3);
  cpu::layernorm_forward(out12.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N, C,
                         1e-12f);
  Vec sref(N);
  EXPECT_LT(rel_err(out12, layernorm_ref(xd, wd, bd, N, C, nullptr, &sref, 1e-12)), 1e-3);
  EXPECT_LT(rel_err(rstd, sref), 1e-3);
  EXPECT_GT(rel_err(out12, layernorm_ref(xd, wd, bd, N, C, nullptr, nullptr, 1e-5)), 0.5);
  // The backward reads the saved rstd: its gradient matches finite differences at eps 1e-12.
  const Vec g = to_double(random_floats(x.size(), 32));
  const FVec dout(g.begin(), g.end());
  FVec dx(x.size(), 0.0f), dw(C, 0.0f), db(C, 0.0f);
  cpu::layernorm_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(),
                          mean.data(), rstd.data(), N, C);
  const Vec fd_w = fd_grad(
      wd, g, [&](const Vec& v) { return layernorm_ref(xd, v, bd, N, C, nullptr, nullptr, 1e-12); });
  EXPECT_LT(rel_err(dw, fd_w), kFdTol);
}

TEST(LayerNorm, BackwardIsBitExactAcrossThreadCounts) {
  const int N = 131, C = 200;
  const FVec x = random_floats(N * C, 28), w = random_floats(C, 29),
             dout = random_floats(N * C, 30);
  FVec out(x.size()), mean(N), rstd(N);
  cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), nullptr, N, C);
  FVec dx1(x.size(), 0.1f), dw1(C, 0.2f), db1(C, 0.3f);
  FVec dx2 = dx1, dw2 = dw1, db2 = db1;
  with_threads(1, [&] {
    cpu::layernorm_backward(dx1.data(), dw1.data(), db1.data(), dout.data(), x.data(), w.data(),
                            mean.data(), rstd.data(), N, C);
  });
  with_threads(2, [&] {
    cpu::layernorm_backward(dx2.data(), dw2.data(), db2.data(), dout.data(), x.data(), w.data(),
                            mean.data(), rstd.data(), N, C);
  });
  EXPECT_TRUE(bit_equal(dx1, dx2));
  EXPECT_TRUE(bit_equal(dw1, dw2));
  EXPECT_TRUE(bit_equal(db1, db2));
}

}  // namespace
}  // namespace ph
