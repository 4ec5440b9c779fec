// Vocab-parallel cross-entropy: the three phases over tp column shards, combined as the
// all-reduces would combine them, equal the fused single-rank kernel (loss and gradient),
// and the gradient matches central differences of the loss; without and with label smoothing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "kernels/cpu/crossentropy.h"

namespace ph::cpu {
namespace {

constexpr int kIgnore = -1;

struct Problem {
  int N = 7, V = 13, Vp = 16;
  std::vector<float> logits;
  std::vector<int32_t> targets;
};

Problem make(int Vp) {
  Problem p;
  p.Vp = Vp;
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  p.logits.resize(static_cast<size_t>(p.N) * Vp);
  for (float& x : p.logits) x = nd(rng);
  p.targets = {0, 12, 5, kIgnore, 7, 8, 3};
  return p;
}

// Runs the three phases on tp shards and returns losses and the gathered dlogits [N, Vp].
// Without smoothing phase 2 is asked for no sum_logits (nor phase 3 given any).
void vocab_parallel(const Problem& p, int tp, float eps, float dloss, std::vector<float>& losses,
                    std::vector<float>& dlogits) {
  const int N = p.N, Vl = p.Vp / tp;
  std::vector<std::vector<float>> shard(tp);
  for (int r = 0; r < tp; ++r)
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < Vl; ++j)
        shard[r].push_back(p.logits[static_cast<size_t>(n) * p.Vp + r * Vl + j]);
  std::vector<float> mx(N, -std::numeric_limits<float>::infinity()), part(N);
  for (int r = 0; r < tp; ++r) {  // MAX all-reduce
    vp_crossentropy_max(part.data(), shard[r].data(), N, Vl, r * Vl, p.V);
    for (int n = 0; n < N; ++n) mx[n] = std::max(mx[n], part[n]);
  }
  std::vector<float> se(N, 0.0f), tl(N, 0.0f), sl(N, 0.0f), se_r(N), tl_r(N), sl_r(N, 0.0f);
  float* const sums_of_logits = eps > 0.0f ? sl_r.data() : nullptr;
  for (int r = 0; r < tp; ++r) {  // SUM all-reduces
    vp_crossentropy_sums(se_r.data(), tl_r.data(), sums_of_logits, shard[r].data(), mx.data(),
                         p.targets.data(), N, Vl, r * Vl, p.V, kIgnore);
    for (int n = 0; n < N; ++n) {
      se[n] += se_r[n];
      tl[n] += tl_r[n];
      sl[n] += sl_r[n];
    }
  }
  losses.assign(N, 0.0f);
  dlogits.assign(static_cast<size_t>(N) * p.Vp, 0.0f);
  for (int r = 0; r < tp; ++r) {
    std::vector<float> d(shard[r].size());
    vp_crossentropy_finish(losses.data(), d.data(), shard[r].data(), mx.data(), se.data(),
                           tl.data(), eps > 0.0f ? sl.data() : nullptr, p.targets.data(), N, Vl,
                           r * Vl, p.V, kIgnore, eps, dloss);
    for (int n = 0; n < N; ++n)
      for (int j = 0; j < Vl; ++j)
        dlogits[static_cast<size_t>(n) * p.Vp + r * Vl + j] = d[static_cast<size_t>(n) * Vl + j];
  }
}

TEST(VocabParallelCrossEntropy, EqualsFusedForEveryShardCount) {
  for (const float eps : {0.0f, 0.1f}) {
    for (int Vp : {16, 32}) {
      const Problem p = make(Vp);
      std::vector<float> ref = p.logits, ref_loss(p.N);
      crossentropy_fused(ref.data(), ref_loss.data(), p.targets.data(), p.N, p.V, p.Vp, kIgnore,
                         eps, 0.25f);
      for (int tp : {1, 2, 4}) {
        std::vector<float> losses, dlogits;
        vocab_parallel(p, tp, eps, 0.25f, losses, dlogits);
        for (int n = 0; n < p.N; ++n)
          EXPECT_NEAR(losses[n], ref_loss[n], 1e-5f) << "eps " << eps << " tp " << tp;
        for (size_t i = 0; i < ref.size(); ++i)
          ASSERT_NEAR(dlogits[i], ref[i], 1e-6f) << "eps " << eps << " tp " << tp << " at " << i;
      }
    }
  }
}

TEST(VocabParallelCrossEntropy, ShardWithOnlyPaddingContributesNothing) {
  // V = 13 of Vp = 32 over 4 shards: shards 2 and 3 hold only padding columns.
  const Problem p = make(32);
  std::vector<float> losses, dlogits;
  vocab_parallel(p, 4, 0.1f, 1.0f, losses, dlogits);
  for (int n = 0; n < p.N; ++n)
    for (int j = p.V; j < p.Vp; ++j) ASSERT_EQ(dlogits[static_cast<size_t>(n) * p.Vp + j], 0.0f);
  EXPECT_EQ(losses[3], 0.0f);  // ignored row
}

void check_finite_differences(float smoothing) {
  Problem p = make(16);
  std::vector<float> losses, dlogits;
  vocab_parallel(p, 2, smoothing, 1.0f, losses, dlogits);
  const double eps = 1e-2;
  for (size_t i : {size_t{0}, size_t{5}, size_t{17}, size_t{28}, size_t{50}, size_t{99}}) {
    const float saved = p.logits[i];
    std::vector<float> lp, lm, unused;
    p.logits[i] = static_cast<float>(saved + eps);
    vocab_parallel(p, 2, smoothing, 1.0f, lp, unused);
    p.logits[i] = static_cast<float>(saved - eps);
    vocab_parallel(p, 2, smoothing, 1.0f, lm, unused);
    p.logits[i] = saved;
    double sp = 0, sm = 0;
    for (int n = 0; n < p.N; ++n) {
      sp += lp[n];
      sm += lm[n];
    }
    EXPECT_NEAR(dlogits[i], (sp - sm) / (2 * eps), 2e-3) << "element " << i;
  }
}

TEST(VocabParallelCrossEntropy, GradientMatchesFiniteDifferences) {
  for (const float eps : {0.0f, 0.1f}) {
    SCOPED_TRACE(eps);
    check_finite_differences(eps);
  }
}

}  // namespace
}  // namespace ph::cpu
