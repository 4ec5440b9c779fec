// CPU kernels against straightforward double-precision references, finite differences,
// op-specific contracts, and bit-exactness across OpenMP thread counts. Attention has its own
// file (test_kernel_attention.cpp), and so has label smoothing (test_kernel_label_smoothing.cpp).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <random>
#include <vector>

#include "kernels/common/activations.h"
#include "kernels/common/dropout_mask.h"
#include "kernels/common/init_normal.h"
#include "kernels/common/philox.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/dropout_scales.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/residual.h"
#include "kernels/cpu/rows.h"
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

// ---------------------------------------------------------------------------------------------
// matmul

Vec matmul_ref(const Vec& x, const Vec& w, const Vec& bias, int N, int IC, int OC) {
  Vec out(static_cast<size_t>(N) * OC);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      double s = bias.empty() ? 0.0 : bias[o];
      for (int i = 0; i < IC; ++i)
        s += x[static_cast<size_t>(n) * IC + i] * w[static_cast<size_t>(o) * IC + i];
      out[static_cast<size_t>(n) * OC + o] = s;
    }
  }
  return out;
}

void check_matmul(int N, int IC, int OC, bool finite_differences) {
  SCOPED_TRACE(::testing::Message() << "N=" << N << " IC=" << IC << " OC=" << OC);
  const FVec x = random_floats(static_cast<size_t>(N) * IC, 31),
             w = random_floats(static_cast<size_t>(OC) * IC, 32);
  const FVec bias = random_floats(OC, 33);
  const Vec xd = to_double(x), wd = to_double(w), bd = to_double(bias);
  FVec out(static_cast<size_t>(N) * OC, 9.0f);
  cpu::matmul_forward(out.data(), x.data(), w.data(), bias.data(), N, IC, OC);
  EXPECT_LT(rel_err(out, matmul_ref(xd, wd, bd, N, IC, OC)), kTol);
  cpu::matmul_forward(out.data(), x.data(), w.data(), nullptr, N, IC, OC);
  EXPECT_LT(rel_err(out, matmul_ref(xd, wd, {}, N, IC, OC)), kTol);

  const Vec g = to_double(random_floats(out.size(), 34));
  const FVec dout(g.begin(), g.end());
  const FVec dx0 = random_floats(x.size(), 35), dw0 = random_floats(w.size(), 36),
             db0 = random_floats(OC, 37);
  FVec dx = dx0, dw = dw0, db = db0;
  cpu::matmul_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), N, IC, OC);
  // Reference gradients of L = sum g * out.
  Vec rdx(x.size(), 0.0), rdw(w.size(), 0.0), rdb(OC, 0.0);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      const double d = g[static_cast<size_t>(n) * OC + o];
      rdb[o] += d;
      for (int i = 0; i < IC; ++i) {
        rdx[static_cast<size_t>(n) * IC + i] += d * wd[static_cast<size_t>(o) * IC + i];
        rdw[static_cast<size_t>(o) * IC + i] += d * xd[static_cast<size_t>(n) * IC + i];
      }
    }
  }
  EXPECT_LT(rel_err(added(dx, dx0), rdx), kTol);
  EXPECT_LT(rel_err(added(dw, dw0), rdw), kTol);
  EXPECT_LT(rel_err(added(db, db0), rdb), kTol);
  if (finite_differences) {
    EXPECT_LT(
        rel_err(added(dx, dx0),
                fd_grad(xd, g, [&](const Vec& v) { return matmul_ref(v, wd, bd, N, IC, OC); })),
        kFdTol);
    EXPECT_LT(
        rel_err(added(dw, dw0),
                fd_grad(wd, g, [&](const Vec& v) { return matmul_ref(xd, v, bd, N, IC, OC); })),
        kFdTol);
    EXPECT_LT(
        rel_err(added(db, db0),
                fd_grad(bd, g, [&](const Vec& v) { return matmul_ref(xd, wd, v, N, IC, OC); })),
        kFdTol);
  }
  // dinp and dbias may be null: dw alone is the same.
  FVec dw2 = dw0;
  cpu::matmul_backward(nullptr, dw2.data(), nullptr, dout.data(), x.data(), w.data(), N, IC, OC);
  EXPECT_TRUE(bit_equal(dw2, dw));
}

TEST(Matmul, SmallOddShapeWithFiniteDifferences) {
  check_matmul(9, 7, 11, true);
}

TEST(Matmul, ShapesCrossingTheBlocks) {
  check_matmul(300, 150, 260, false);
}

TEST(Matmul, BackwardIsBitExactAcrossThreadCounts) {
  const int N = 520, IC = 140, OC = 270;
  const FVec x = random_floats(static_cast<size_t>(N) * IC, 38),
             w = random_floats(static_cast<size_t>(OC) * IC, 39);
  const FVec dout = random_floats(static_cast<size_t>(N) * OC, 40);
  FVec dx1(x.size(), 0.5f), dw1(w.size(), 0.5f), db1(OC, 0.5f);
  FVec dx2 = dx1, dw2 = dw1, db2 = db1;
  with_threads(1, [&] {
    cpu::matmul_backward(dx1.data(), dw1.data(), db1.data(), dout.data(), x.data(), w.data(), N, IC,
                         OC);
  });
  with_threads(2, [&] {
    cpu::matmul_backward(dx2.data(), dw2.data(), db2.data(), dout.data(), x.data(), w.data(), N, IC,
                         OC);
  });
  EXPECT_TRUE(bit_equal(dx1, dx2));
  EXPECT_TRUE(bit_equal(dw1, dw2));
  EXPECT_TRUE(bit_equal(db1, db2));
}

// ---------------------------------------------------------------------------------------------
// cross-entropy

constexpr int kIgnore = -100;

Vec ce_losses_ref(const Vec& logits, const std::vector<int32_t>& t, int N, int V, int Vp) {
  Vec loss(N, 0.0);
  for (int n = 0; n < N; ++n) {
    if (t[n] == kIgnore) continue;
    double mx = -1e300, s = 0.0;
    for (int j = 0; j < V; ++j) mx = std::max(mx, logits[n * Vp + j]);
    for (int j = 0; j < V; ++j) s += std::exp(logits[n * Vp + j] - mx);
    loss[n] = std::log(s) + mx - logits[n * Vp + t[n]];
  }
  return loss;
}

TEST(CrossEntropy, ForwardFusedIgnoreIndexAndPaddedVocab) {
  const int N = 6, V = 11, Vp = 16;
  const std::vector<int32_t> targets = {3, kIgnore, 0, 10, 7, kIgnore};
  FVec logits = random_floats(N * Vp, 51, -4.0f, 4.0f);
  for (int n = 0; n < N; ++n) {
    for (int j = V; j < Vp; ++j) logits[n * Vp + j] = 1e4f;  // padding must never count
  }
  logits[2 * Vp + 5] = 60.0f;  // a large logit: the log-sum-exp must stay finite
  const Vec ld = to_double(logits);
  FVec losses(N, 9.0f);
  cpu::crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V, Vp, kIgnore, 0.0f);
  const Vec ref = ce_losses_ref(ld, targets, N, V, Vp);
  EXPECT_LT(rel_err(losses, ref), kTol);
  EXPECT_EQ(losses[1], 0.0f);
  EXPECT_EQ(losses[5], 0.0f);

  const float dloss = 0.25f;
  FVec fused = logits, flosses(N, 9.0f);
  cpu::crossentropy_fused(fused.data(), flosses.data(), targets.data(), N, V, Vp, kIgnore, 0.0f,
                          dloss);
  EXPECT_LT(rel_err(flosses, ref), kTol);
  // Separate reference backward: (softmax - onehot) * dloss, 0 for padding and ignored rows.
  Vec dref(ld.size(), 0.0);
  for (int n = 0; n < N; ++n) {
    if (targets[n] == kIgnore) continue;
    double mx = -1e300, s = 0.0;
    for (int j = 0; j < V; ++j) mx = std::max(mx, ld[n * Vp + j]);
    for (int j = 0; j < V; ++j) s += std::exp(ld[n * Vp + j] - mx);
    for (int j = 0; j < V; ++j)
      dref[n * Vp + j] = (std::exp(ld[n * Vp + j] - mx) / s - (j == targets[n])) * dloss;
  }
  EXPECT_LT(rel_err(fused, dref), kTol);
  for (int n = 0; n < N; ++n) {
    for (int j = V; j < Vp; ++j) EXPECT_EQ(fused[n * Vp + j], 0.0f);
    if (targets[n] == kIgnore) {
      for (int j = 0; j < Vp; ++j) EXPECT_EQ(fused[n * Vp + j], 0.0f);
    }
  }
  // Finite differences of L = dloss * sum of losses.
  const Vec w(N, static_cast<double>(dloss));
  const Vec fd = fd_grad(ld, w, [&](const Vec& v) { return ce_losses_ref(v, targets, N, V, Vp); });
  EXPECT_LT(rel_err(fused, fd), kFdTol);
}

TEST(CrossEntropy, TargetOutsideTheVocabularyIsANaNLoss) {
  const int N = 2, V = 5, Vp = 8;
  const std::vector<int32_t> targets = {5, 2};
  FVec logits = random_floats(N * Vp, 52);
  FVec losses(N);
  cpu::crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V, Vp, kIgnore, 0.0f);
  EXPECT_TRUE(std::isnan(losses[0]));
  EXPECT_TRUE(std::isfinite(losses[1]));
  cpu::crossentropy_fused(logits.data(), losses.data(), targets.data(), N, V, Vp, kIgnore, 0.0f,
                          1.0f);
  EXPECT_TRUE(std::isnan(losses[0]));
  for (int j = 0; j < Vp; ++j) EXPECT_EQ(logits[j], 0.0f);
}

// ---------------------------------------------------------------------------------------------
// element-wise ops

TEST(Activation, GeluAndReluAgainstReferenceAndFiniteDifferences) {
  const size_t n = 1000 + 37;  // not a multiple of a vector width
  const FVec x = random_floats(n, 61, -5.0f, 5.0f);
  const Vec xd = to_double(x);
  auto gelu_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const double u = std::sqrt(2.0 / std::numbers::pi) * (v[i] + 0.044715 * v[i] * v[i] * v[i]);
      o[i] = 0.5 * v[i] * (1.0 + std::tanh(u));
    }
    return o;
  };
  auto relu_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = v[i] > 0 ? v[i] : 0.0;
    return o;
  };
  const Vec g = to_double(random_floats(n, 62));
  const FVec dout(g.begin(), g.end());
  const FVec d0 = random_floats(n, 63);
  FVec out(n), din = d0;
  cpu::gelu_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, gelu_ref(xd)), kTol);
  cpu::gelu_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, gelu_ref)), kFdTol);
  din = d0;
  cpu::relu_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, relu_ref(xd)), kTol);
  cpu::relu_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, relu_ref)), kFdTol);
}

TEST(Activation, GeluErfAndTanhAgainstReferenceAndFiniteDifferences) {
  const size_t n = 1000 + 37;
  const FVec x = random_floats(n, 66, -5.0f, 5.0f);
  const Vec xd = to_double(x);
  auto gelu_erf_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = 0.5 * v[i] * std::erfc(-v[i] / std::sqrt(2.0));
    return o;
  };
  auto tanh_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = std::tanh(v[i]);
    return o;
  };
  const Vec g = to_double(random_floats(n, 67));
  const FVec dout(g.begin(), g.end());
  const FVec d0 = random_floats(n, 68);
  FVec out(n), din = d0;
  cpu::gelu_erf_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, gelu_erf_ref(xd)), kTol);
  // Not the tanh approximation: the two differ by up to ~2e-4 near |x| = 2.
  FVec approx(n);
  cpu::gelu_forward(approx.data(), x.data(), n);
  EXPECT_GT(rel_err(approx, gelu_erf_ref(xd)), 1e-5);
  cpu::gelu_erf_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, gelu_erf_ref)), kFdTol);
  din = d0;
  cpu::tanh_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, tanh_ref(xd)), kTol);
  cpu::tanh_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, tanh_ref)), kFdTol);
}

TEST(Activation, GeluIsBitExactAcrossThreadCounts) {
  const size_t n = (size_t{1} << 16) + 5;
  const FVec x = random_floats(n, 64, -5.0f, 5.0f), dout = random_floats(n, 65);
  FVec y1(n), y2(n), d1(n, 0.5f), d2(n, 0.5f);
  with_threads(1, [&] {
    cpu::gelu_forward(y1.data(), x.data(), n);
    cpu::gelu_backward(d1.data(), x.data(), dout.data(), n);
  });
  with_threads(2, [&] {
    cpu::gelu_forward(y2.data(), x.data(), n);
    cpu::gelu_backward(d2.data(), x.data(), dout.data(), n);
  });
  EXPECT_TRUE(bit_equal(y1, y2));
  EXPECT_TRUE(bit_equal(d1, d2));
  FVec e1(n), e2(n), de1(n, 0.5f), de2(n, 0.5f);
  with_threads(1, [&] {
    cpu::gelu_erf_forward(e1.data(), x.data(), n);
    cpu::gelu_erf_backward(de1.data(), x.data(), dout.data(), n);
  });
  with_threads(2, [&] {
    cpu::gelu_erf_forward(e2.data(), x.data(), n);
    cpu::gelu_erf_backward(de2.data(), x.data(), dout.data(), n);
  });
  EXPECT_TRUE(bit_equal(e1, e2));
  EXPECT_TRUE(bit_equal(de1, de2));
}

TEST(Residual, Forward) {
  const size_t n = 101;
  const FVec a = random_floats(n, 71), b = random_floats(n, 72);
  FVec out(n);
  cpu::residual_forward(out.data(), a.data(), b.data(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(out[i], a[i] + b[i]);
  FVec inplace = a;
  cpu::residual_forward(inplace.data(), inplace.data(), b.data(), n);
  EXPECT_TRUE(bit_equal(inplace, out));
}

// ---------------------------------------------------------------------------------------------
// row gather and scatter-add

TEST(Rows, GatherAndScatterAddAgainstReferenceAndFiniteDifferences) {
  const int R = 9, C = 13;
  const std::vector<int32_t> rows = {7, 0, 3, 8, 4};  // distinct, unordered; rows 1, 2, 5, 6 unused
  const int n = static_cast<int>(rows.size());
  const FVec inp = random_floats(static_cast<size_t>(R) * C, 91);
  auto gather_ref = [&](const Vec& x) {
    Vec o(static_cast<size_t>(n) * C);
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < C; ++c) o[static_cast<size_t>(i) * C + c] = x[rows[i] * C + c];
    }
    return o;
  };
  FVec out(static_cast<size_t>(n) * C, 7.0f);
  cpu::gather_rows(out.data(), inp.data(), rows.data(), n, C);
  const Vec ref = gather_ref(to_double(inp));
  EXPECT_TRUE(bit_equal(out, FVec(ref.begin(), ref.end())));
  // Backward: dinp[rows[i]] += dout[i]; the other rows keep their bits.
  const Vec g = to_double(random_floats(out.size(), 92));
  const FVec dout(g.begin(), g.end());
  const FVec d0 = random_floats(inp.size(), 93);
  FVec dinp = d0;
  cpu::scatter_add_rows(dinp.data(), dout.data(), rows.data(), n, C);
  for (int r = 0; r < R; ++r) {
    const auto it = std::find(rows.begin(), rows.end(), r);
    for (int c = 0; c < C; ++c) {
      const size_t e = static_cast<size_t>(r) * C + c;
      const float want =
          it == rows.end() ? d0[e] : d0[e] + dout[static_cast<size_t>(it - rows.begin()) * C + c];
      ASSERT_EQ(dinp[e], want) << "row " << r << " column " << c;
    }
  }
  EXPECT_LT(rel_err(added(dinp, d0), fd_grad(to_double(inp), g, gather_ref)), kFdTol);
  // Nothing to do for n = 0.
  FVec untouched = d0;
  cpu::scatter_add_rows(untouched.data(), dout.data(), rows.data(), 0, C);
  cpu::gather_rows(out.data(), inp.data(), rows.data(), 0, C);
  EXPECT_TRUE(bit_equal(untouched, d0));
  // A negative index gives a row of zeros (unpacking into a padded layout).
  const std::vector<int32_t> holes = {2, -1, 0, -5};
  FVec unpacked(holes.size() * C, 7.0f);
  cpu::gather_rows(unpacked.data(), inp.data(), holes.data(), 4, C);
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < C; ++c)
      ASSERT_EQ(unpacked[static_cast<size_t>(i) * C + c],
                holes[i] < 0 ? 0.0f : inp[static_cast<size_t>(holes[i]) * C + c])
          << "row " << i;
}

}  // namespace
}  // namespace ph
