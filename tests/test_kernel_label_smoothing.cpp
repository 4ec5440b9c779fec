// Label-smoothed cross-entropy on the CPU backend (kernels/cpu/crossentropy.h): a case small
// enough to work out by hand, a double-precision reference and central finite differences, the
// vocab-parallel phases over two shards against the unsharded kernels, and smoothing 0 bit for
// bit the kernels as they were before label smoothing existed (kept below, verbatim).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/fast_exp.h"
#include "tests/reference_checks.h"

namespace ph {
namespace {

using testing::bit_equal;
using testing::fd_grad;
using testing::FVec;
using testing::kFdTol;
using testing::kTol;
using testing::random_floats;
using testing::rel_err;
using testing::to_double;
using testing::Vec;

constexpr int kIgnore = -100;

// ---------------------------------------------------------------------------------------------
// by hand

// V = 3 real columns, Vp = 4 (column 3 is padding and must never count), eps = 0.1, dloss 0.5.
//
// Row 0: logits (0, ln 2, ln 7) (+ padding 1e4), target 1. softmax p = (1, 2, 7) / 10.
//   q = (1 - eps) onehot(1) + eps / 3 = (1/30, 0.9 + 1/30, 1/30)
//   loss = -sum_j q_j log p_j = -(0.1 / 3) (ln 0.1 + ln 0.2 + ln 0.7) - 0.9 ln 0.2
//        = (0.1 / 3) * 4.268697949 + 0.9 * 1.609437912 = 0.142289932 + 1.448494121
//        = 1.590784053
//   dlogits = (p - q) * dloss = (0.1 - 1/30, 0.2 - 28/30, 0.7 - 1/30) * 0.5
//           = (1/15, -11/15, 2/3) * 0.5 = (0.0333333, -0.3666667, 0.3333333)
// Row 1: logits (0, 0, 0), target 2. p = (1/3, 1/3, 1/3): every -log p_j is ln 3, so the loss
//   is ln 3 = 1.098612289 whatever eps; dlogits = (1/3 - 1/30, 1/3 - 1/30, 1/3 - 28/30) * 0.5
//   = (0.3, 0.3, -0.6) * 0.5 = (0.15, 0.15, -0.3).
// Row 2: ignored: loss 0, dlogits 0.
struct HandCase {
  static constexpr int N = 3, V = 3, Vp = 4;
  static constexpr float kEps = 0.1f, kDloss = 0.5f;
  FVec logits = {0.0f, std::log(2.0f), std::log(7.0f), 1e4f,  //
                 0.0f, 0.0f,           0.0f,           1e4f,  //
                 1.0f, 2.0f,           3.0f,           1e4f};
  std::vector<int32_t> targets = {1, 2, kIgnore};
  std::vector<double> losses = {1.590784053, 1.098612289, 0.0};
  std::vector<double> dlogits = {1.0 / 30, -11.0 / 30, 1.0 / 3, 0.0,  //
                                 0.15,     0.15,       -0.3,    0.0,  //
                                 0.0,      0.0,        0.0,     0.0};
};

TEST(LabelSmoothing, TinyCaseByHand) {
  const HandCase h;
  FVec losses(HandCase::N, 9.0f);
  cpu::crossentropy_forward(losses.data(), h.logits.data(), h.targets.data(), HandCase::N,
                            HandCase::V, HandCase::Vp, kIgnore, HandCase::kEps);
  for (int n = 0; n < HandCase::N; ++n) EXPECT_NEAR(losses[n], h.losses[n], 1e-6) << "row " << n;

  FVec d = h.logits, flosses(HandCase::N, 9.0f);
  cpu::crossentropy_fused(d.data(), flosses.data(), h.targets.data(), HandCase::N, HandCase::V,
                          HandCase::Vp, kIgnore, HandCase::kEps, HandCase::kDloss);
  for (int n = 0; n < HandCase::N; ++n) EXPECT_NEAR(flosses[n], h.losses[n], 1e-6) << "row " << n;
  for (size_t i = 0; i < d.size(); ++i) EXPECT_NEAR(d[i], h.dlogits[i], 1e-7) << "element " << i;
  EXPECT_EQ(d[3], 0.0f);  // padding
  EXPECT_EQ(flosses[2], 0.0f);

  // Without smoothing row 0 is -ln 0.2 and its gradient (p - onehot) * dloss.
  cpu::crossentropy_forward(losses.data(), h.logits.data(), h.targets.data(), HandCase::N,
                            HandCase::V, HandCase::Vp, kIgnore, 0.0f);
  EXPECT_NEAR(losses[0], 1.609437912, 1e-6);
  EXPECT_NEAR(losses[1], 1.098612289, 1e-6);
  d = h.logits;
  cpu::crossentropy_fused(d.data(), flosses.data(), h.targets.data(), HandCase::N, HandCase::V,
                          HandCase::Vp, kIgnore, 0.0f, HandCase::kDloss);
  EXPECT_NEAR(d[0], 0.05, 1e-7);
  EXPECT_NEAR(d[1], -0.4, 1e-7);
  EXPECT_NEAR(d[2], 0.35, 1e-7);
}

// The three vocab-parallel phases on shards of Vl columns, combined as the all-reduces would
// (MAX of row_max, SUM of sum_exp, target_logit and sum_logits), then each shard's gradient
// gathered into [N, Vp].
struct VocabParallel {
  FVec losses, dlogits, losses_only;
};
VocabParallel vocab_parallel(const FVec& logits, const std::vector<int32_t>& targets, int N, int V,
                             int Vp, int shards, float eps, float dloss) {
  const int Vl = Vp / shards;
  std::vector<FVec> shard(static_cast<size_t>(shards));
  for (int r = 0; r < shards; ++r) {
    for (int n = 0; n < N; ++n) {
      for (int j = 0; j < Vl; ++j)
        shard[r].push_back(logits[static_cast<size_t>(n) * Vp + r * Vl + j]);
    }
  }
  FVec mx(N, -std::numeric_limits<float>::infinity()), part(N);
  for (int r = 0; r < shards; ++r) {
    cpu::vp_crossentropy_max(part.data(), shard[r].data(), N, Vl, r * Vl, V);
    for (int n = 0; n < N; ++n) mx[n] = std::max(mx[n], part[n]);
  }
  FVec se(N, 0.0f), tl(N, 0.0f), sl(N, 0.0f), se_r(N), tl_r(N), sl_r(N);
  for (int r = 0; r < shards; ++r) {
    cpu::vp_crossentropy_sums(se_r.data(), tl_r.data(), sl_r.data(), shard[r].data(), mx.data(),
                              targets.data(), N, Vl, r * Vl, V, kIgnore);
    for (int n = 0; n < N; ++n) {
      se[n] += se_r[n];
      tl[n] += tl_r[n];
      sl[n] += sl_r[n];
    }
  }
  VocabParallel out{FVec(N), FVec(static_cast<size_t>(N) * Vp), FVec(N)};
  for (int r = 0; r < shards; ++r) {
    FVec d(shard[r].size(), 7.0f);
    cpu::vp_crossentropy_finish(out.losses.data(), d.data(), shard[r].data(), mx.data(), se.data(),
                                tl.data(), sl.data(), targets.data(), N, Vl, r * Vl, V, kIgnore,
                                eps, dloss);
    cpu::vp_crossentropy_finish(out.losses_only.data(), nullptr, shard[r].data(), mx.data(),
                                se.data(), tl.data(), sl.data(), targets.data(), N, Vl, r * Vl, V,
                                kIgnore, eps, dloss);
    for (int n = 0; n < N; ++n) {
      for (int j = 0; j < Vl; ++j) {
        out.dlogits[static_cast<size_t>(n) * Vp + r * Vl + j] = d[static_cast<size_t>(n) * Vl + j];
      }
    }
  }
  return out;
}

TEST(LabelSmoothing, TinyCaseByHandOverTwoVocabularyShards) {
  const HandCase h;  // shard 0: columns 0 and 1, shard 1: column 2 and the padding
  const VocabParallel vp = vocab_parallel(h.logits, h.targets, HandCase::N, HandCase::V,
                                          HandCase::Vp, 2, HandCase::kEps, HandCase::kDloss);
  for (int n = 0; n < HandCase::N; ++n) {
    EXPECT_NEAR(vp.losses[n], h.losses[n], 1e-6) << "row " << n;
    EXPECT_EQ(vp.losses_only[n], vp.losses[n]) << "row " << n;
  }
  for (size_t i = 0; i < vp.dlogits.size(); ++i) {
    EXPECT_NEAR(vp.dlogits[i], h.dlogits[i], 1e-7) << "element " << i;
  }
}

// ---------------------------------------------------------------------------------------------
// reference and finite differences

// losses[n] = -sum_j q_j log p_j over the V real columns, 0 for ignored rows.
Vec smoothed_losses_ref(const Vec& x, const std::vector<int32_t>& t, int N, int V, int Vp,
                        double eps) {
  Vec loss(N, 0.0);
  for (int n = 0; n < N; ++n) {
    if (t[n] == kIgnore) continue;
    const double* row = &x[static_cast<size_t>(n) * Vp];
    double mx = row[0];
    for (int j = 1; j < V; ++j) mx = std::max(mx, row[j]);
    double s = 0.0;
    for (int j = 0; j < V; ++j) s += std::exp(row[j] - mx);
    const double lse = mx + std::log(s);
    for (int j = 0; j < V; ++j) {
      const double q = eps / V + (j == t[n] ? 1.0 - eps : 0.0);
      loss[n] += q * (lse - row[j]);
    }
  }
  return loss;
}

struct RandomCase {
  int N = 7, V = 13, Vp = 16;
  std::vector<int32_t> targets = {0, 12, 5, kIgnore, 7, 8, 3};
  FVec logits = random_floats(static_cast<size_t>(7) * 16, 61, -4.0f, 4.0f);
};

TEST(LabelSmoothing, AgainstReferenceAndFiniteDifferences) {
  for (const float eps : {0.1f, 0.3f}) {
    SCOPED_TRACE(eps);
    RandomCase c;
    for (int n = 0; n < c.N; ++n) c.logits[static_cast<size_t>(n) * c.Vp + c.V] = 50.0f;  // pad
    const Vec xd = to_double(c.logits);
    const Vec ref = smoothed_losses_ref(xd, c.targets, c.N, c.V, c.Vp, eps);
    FVec losses(c.N, 9.0f);
    cpu::crossentropy_forward(losses.data(), c.logits.data(), c.targets.data(), c.N, c.V, c.Vp,
                              kIgnore, eps);
    EXPECT_LT(rel_err(losses, ref), kTol);
    const float dloss = 0.25f;
    FVec d = c.logits, flosses(c.N, 9.0f);
    cpu::crossentropy_fused(d.data(), flosses.data(), c.targets.data(), c.N, c.V, c.Vp, kIgnore,
                            eps, dloss);
    EXPECT_LT(rel_err(flosses, ref), kTol);
    const Vec w(c.N, static_cast<double>(dloss));
    const Vec fd = fd_grad(xd, w, [&](const Vec& v) {
      return smoothed_losses_ref(v, c.targets, c.N, c.V, c.Vp, eps);
    });
    EXPECT_LT(rel_err(d, fd), kFdTol);
    for (int n = 0; n < c.N; ++n) {
      for (int j = c.V; j < c.Vp; ++j) EXPECT_EQ(d[static_cast<size_t>(n) * c.Vp + j], 0.0f);
    }
    // Smoothing moves the loss: it is not the plain cross-entropy.
    FVec plain(c.N);
    cpu::crossentropy_forward(plain.data(), c.logits.data(), c.targets.data(), c.N, c.V, c.Vp,
                              kIgnore, 0.0f);
    EXPECT_GT(std::fabs(plain[0] - losses[0]), 1e-3);
  }
}

TEST(LabelSmoothing, TwoVocabularyShardsEqualTheUnshardedKernels) {
  const RandomCase c;
  for (const float eps : {0.0f, 0.1f}) {
    SCOPED_TRACE(eps);
    FVec fused = c.logits, flosses(c.N);
    cpu::crossentropy_fused(fused.data(), flosses.data(), c.targets.data(), c.N, c.V, c.Vp, kIgnore,
                            eps, 0.25f);
    FVec losses(c.N);
    cpu::crossentropy_forward(losses.data(), c.logits.data(), c.targets.data(), c.N, c.V, c.Vp,
                              kIgnore, eps);
    // Vp = 16 over 2 shards of 8: shard 1 holds 5 real columns and 3 padded ones.
    const VocabParallel vp = vocab_parallel(c.logits, c.targets, c.N, c.V, c.Vp, 2, eps, 0.25f);
    for (int n = 0; n < c.N; ++n) {
      EXPECT_NEAR(vp.losses[n], flosses[n], 1e-5) << "row " << n;
      EXPECT_NEAR(vp.losses[n], losses[n], 1e-5) << "row " << n;
      EXPECT_EQ(vp.losses_only[n], vp.losses[n]) << "row " << n;
    }
    for (size_t i = 0; i < fused.size(); ++i) {
      ASSERT_NEAR(vp.dlogits[i], fused[i], 1e-6) << "element " << i;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// smoothing 0 is the kernels of before, bit for bit

namespace before {
// kernels/cpu/crossentropy.cpp as it was before label smoothing (commit fd280f6), verbatim but
// for the namespace and `static`.
using cpu::exp_vec;

float row_max_of(const float* x, int V) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < V; ++j) mx = std::max(mx, x[j]);
  return mx;
}

bool valid_target(int32_t t, int V) {
  return t >= 0 && t < V;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                          int Vp, int ignore_index) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    if (t == ignore_index) {
      losses[n] = 0.0f;
      continue;
    }
    if (!valid_target(t, V)) {
      losses[n] = kNaN;
      continue;
    }
    const float* x = logits + static_cast<size_t>(n) * Vp;
    const float mx = row_max_of(x, V);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) sum += exp_vec(x[j] - mx);
    losses[n] = std::log(sum) - (x[t] - mx);
  }
}

void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                        int V, int Vp, int ignore_index, float dloss) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* x = logits_to_dlogits + static_cast<size_t>(n) * Vp;
    const int32_t t = targets[n];
    if (t == ignore_index || !valid_target(t, V)) {
      losses[n] = t == ignore_index ? 0.0f : kNaN;
      std::fill(x, x + Vp, 0.0f);
      continue;
    }
    const float mx = row_max_of(x, V);
    const float xt = x[t];
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) {
      const float e = exp_vec(x[j] - mx);
      x[j] = e;
      sum += e;
    }
    losses[n] = std::log(sum) - (xt - mx);
    const float inv = 1.0f / sum;
    const float p_target = x[t] * inv;
    const float g = inv * dloss;
    for (int j = 0; j < V; ++j) x[j] *= g;
    x[t] = (p_target - 1.0f) * dloss;
    std::fill(x + V, x + Vp, 0.0f);
  }
}

int real_local(int Vl, int v0, int V) {
  return std::clamp(V - v0, 0, Vl);
}

void vp_crossentropy_sums(float* sum_exp, float* target_logit, const float* logits,
                          const float* row_max, const int32_t* targets, int N, int Vl, int v0,
                          int V, int ignore_index) {
  const int R = real_local(Vl, v0, V);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* x = logits + static_cast<size_t>(n) * Vl;
    const float mx = row_max[n];
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < R; ++j) sum += exp_vec(x[j] - mx);
    sum_exp[n] = sum;
    const int32_t t = targets[n];
    const bool here = t != ignore_index && t >= v0 && t < v0 + R;
    target_logit[n] = here ? x[t - v0] : 0.0f;
  }
}

void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                            const float* row_max, const float* sum_exp, const float* target_logit,
                            const int32_t* targets, int N, int Vl, int v0, int V, int ignore_index,
                            float dloss) {
  const int R = real_local(Vl, v0, V);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    const bool ignored = t == ignore_index;
    losses[n] = ignored              ? 0.0f
                : valid_target(t, V) ? std::log(sum_exp[n]) + row_max[n] - target_logit[n]
                                     : kNaN;
    if (!dlogits) continue;
    float* d = dlogits + static_cast<size_t>(n) * Vl;
    if (ignored || !valid_target(t, V)) {
      std::fill(d, d + Vl, 0.0f);
      continue;
    }
    const float* x = logits + static_cast<size_t>(n) * Vl;
    const float mx = row_max[n];
    const float g = dloss / sum_exp[n];
#pragma omp simd
    for (int j = 0; j < R; ++j) d[j] = exp_vec(x[j] - mx) * g;
    std::fill(d + R, d + Vl, 0.0f);
    if (t >= v0 && t < v0 + R) d[t - v0] -= dloss;
  }
}
}  // namespace before

TEST(LabelSmoothing, ZeroIsBitForBitTheKernelsOfBefore) {
  // Rows with: a large logit, ignored rows, invalid targets (a padded column, a negative one),
  // -inf logits off the target; a vocabulary wider than a vector register and not a multiple.
  const int N = 8, V = 1003, Vp = 1024;
  const std::vector<int32_t> targets = {0, V - 1, kIgnore, 5, V, -3, 12, 3};
  FVec logits = random_floats(static_cast<size_t>(N) * Vp, 71, -8.0f, 8.0f);
  logits[5] = 80.0f;
  for (int j = 0; j < V; j += 3) logits[static_cast<size_t>(7) * Vp + j] = -INFINITY;
  const float dloss = 1.0f / 7.0f;  // not a power of two: products round

  FVec now(N), then(N);
  cpu::crossentropy_forward(now.data(), logits.data(), targets.data(), N, V, Vp, kIgnore, 0.0f);
  before::crossentropy_forward(then.data(), logits.data(), targets.data(), N, V, Vp, kIgnore);
  EXPECT_TRUE(bit_equal(now, then)) << "forward";

  FVec d_now = logits, d_then = logits;
  cpu::crossentropy_fused(d_now.data(), now.data(), targets.data(), N, V, Vp, kIgnore, 0.0f, dloss);
  before::crossentropy_fused(d_then.data(), then.data(), targets.data(), N, V, Vp, kIgnore, dloss);
  EXPECT_TRUE(bit_equal(now, then)) << "fused losses";
  EXPECT_TRUE(bit_equal(d_now, d_then)) << "fused dlogits";

  // Vocab-parallel, 3 shards of 512 columns (the last one padding only) over Vp = 1536.
  const int shards = 3, Vl = 512, Vp3 = shards * Vl;
  FVec wide(static_cast<size_t>(N) * Vp3, 0.0f);
  for (int n = 0; n < N; ++n) {
    std::copy_n(logits.begin() + static_cast<long>(n) * Vp, Vp,
                wide.begin() + static_cast<long>(n) * Vp3);
  }
  FVec mx(N, -INFINITY), part(N);
  std::vector<FVec> shard(shards);
  for (int r = 0; r < shards; ++r) {
    for (int n = 0; n < N; ++n) {
      shard[r].insert(shard[r].end(), wide.begin() + static_cast<long>(n) * Vp3 + r * Vl,
                      wide.begin() + static_cast<long>(n) * Vp3 + (r + 1) * Vl);
    }
    cpu::vp_crossentropy_max(part.data(), shard[r].data(), N, Vl, r * Vl, V);
    for (int n = 0; n < N; ++n) mx[n] = std::max(mx[n], part[n]);
  }
  FVec se(N, 0.0f), tl(N, 0.0f);
  for (int r = 0; r < shards; ++r) {
    FVec se_now(N), tl_now(N), se_then(N), tl_then(N);
    cpu::vp_crossentropy_sums(se_now.data(), tl_now.data(), nullptr, shard[r].data(), mx.data(),
                              targets.data(), N, Vl, r * Vl, V, kIgnore);
    before::vp_crossentropy_sums(se_then.data(), tl_then.data(), shard[r].data(), mx.data(),
                                 targets.data(), N, Vl, r * Vl, V, kIgnore);
    EXPECT_TRUE(bit_equal(se_now, se_then)) << "sum_exp, shard " << r;
    EXPECT_TRUE(bit_equal(tl_now, tl_then)) << "target_logit, shard " << r;
    for (int n = 0; n < N; ++n) {
      se[n] += se_now[n];
      tl[n] += tl_now[n];
    }
  }
  for (int r = 0; r < shards; ++r) {
    FVec l_now(N), l_then(N), dn(shard[r].size()), dt(shard[r].size());
    cpu::vp_crossentropy_finish(l_now.data(), dn.data(), shard[r].data(), mx.data(), se.data(),
                                tl.data(), nullptr, targets.data(), N, Vl, r * Vl, V, kIgnore, 0.0f,
                                dloss);
    before::vp_crossentropy_finish(l_then.data(), dt.data(), shard[r].data(), mx.data(), se.data(),
                                   tl.data(), targets.data(), N, Vl, r * Vl, V, kIgnore, dloss);
    EXPECT_TRUE(bit_equal(l_now, l_then)) << "finish losses, shard " << r;
    EXPECT_TRUE(bit_equal(dn, dt)) << "finish dlogits, shard " << r;
  }
}

}  // namespace
}  // namespace ph
