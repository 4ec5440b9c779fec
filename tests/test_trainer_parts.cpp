// Learning-rate schedules, AdamW and clipping against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/param_table.h"
#include "tests/test_backend.h"
#include "trainer/optimizer.h"
#include "trainer/schedule.h"

namespace ph {
namespace {

OptimConfig sched(const char* kind) {
  OptimConfig o;
  o.lr = 1.0f;
  o.min_lr = 0.1f;
  o.warmup_steps = 10;
  o.schedule = kind;
  return o;
}

TEST(Schedule, LinearWarmupFromLrOverWarmup) {
  const OptimConfig o = sched("cosine");
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 0), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 4), 0.5f);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 9), 1.0f);
}

TEST(Schedule, CosineDecaysToMinLr) {
  const OptimConfig o = sched("cosine");
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 10), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 60), 0.55f);  // halfway: min + (lr-min)/2
  EXPECT_NEAR(learning_rate(o, 110, 35), 0.1 + 0.45 * (1 + std::cos(M_PI * 0.25)), 1e-6);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 110), 0.1f);
}

TEST(Schedule, LinearConstantInverseSqrt) {
  EXPECT_FLOAT_EQ(learning_rate(sched("linear"), 110, 60), 0.55f);
  EXPECT_FLOAT_EQ(learning_rate(sched("linear"), 110, 85), 0.325f);
  EXPECT_FLOAT_EQ(learning_rate(sched("constant"), 110, 100), 1.0f);
  // inverse_sqrt: lr * sqrt(warmup / (step + 1)), floored at min_lr.
  EXPECT_FLOAT_EQ(learning_rate(sched("inverse_sqrt"), 110, 9), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(sched("inverse_sqrt"), 110, 39), 0.5f);
  EXPECT_FLOAT_EQ(learning_rate(sched("inverse_sqrt"), 100000, 99999), 0.1f);
}

TEST(AdamW, TwoStepsMatchHandComputation) {
  ParamTable t;
  t.add("w", {2}, Split::Replicated, InitKind::Zeros, 0.0f, true);
  t.add("b", {1}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  t.place(0, 1);
  OptimConfig o;
  o.beta1 = 0.9f;
  o.beta2 = 0.99f;
  o.eps = 1e-8f;
  o.weight_decay = 0.5f;
  AdamW opt(ph::test::cpu(), o, t);
  std::vector<float> p(t.total(), 0.0f), g(t.total(), 0.0f);
  const size_t w = t[0].offset, b = t[1].offset;
  p[w] = 1.0f;
  p[w + 1] = -2.0f;
  p[b] = 3.0f;
  // Step 1, g = (0.5, -1, 2), lr 0.1: m = 0.1 g, v = 0.01 g^2, mhat/sqrt(vhat) = sign(g).
  g[w] = 0.5f;
  g[w + 1] = -1.0f;
  g[b] = 2.0f;
  opt.step(p.data(), g.data(), 0.1f, 1, 1.0f);
  EXPECT_NEAR(p[w], 1.0 - 0.1 * (1.0 + 0.5 * 1.0), 1e-6);
  EXPECT_NEAR(p[w + 1], -2.0 - 0.1 * (-1.0 + 0.5 * -2.0), 1e-6);
  EXPECT_NEAR(p[b], 3.0 - 0.1 * 1.0, 1e-6);  // no decay on b
  // Step 2, same gradient halved by grad_scale 0.5 on w[0] only through g = 0.25 effective.
  const double p0 = p[w];
  g[w] = 0.5f;
  opt.step(p.data(), g.data(), 0.1f, 2, 0.5f);
  const double g1 = 0.5, g2 = 0.25;
  const double m = 0.9 * (0.1 * g1) + 0.1 * g2, v = 0.99 * (0.01 * g1 * g1) + 0.01 * g2 * g2;
  const double mhat = m / (1 - 0.81), vhat = v / (1 - 0.99 * 0.99);
  EXPECT_NEAR(p[w], p0 - 0.1 * (mhat / (std::sqrt(vhat) + 1e-8) + 0.5 * p0), 1e-6);
}

TEST(AdamW, ASliceOfTheArenaUpdatesLikeTheWhole) {
  ParamTable t;
  t.add("a", {3}, Split::Replicated, InitKind::Zeros, 0.0f, true);
  t.add("b", {2}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  t.place(0, 1);
  OptimConfig o;
  o.weight_decay = 0.3f;
  std::vector<float> g = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f};
  std::vector<float> whole = {1, 2, 3, 4, 5}, sliced = whole;
  AdamW full(ph::test::cpu(), o, t), lo(ph::test::cpu(), o, t, 0, 2),
      hi(ph::test::cpu(), o, t, 2, 5);
  for (int step = 1; step <= 3; ++step) {
    full.step(whole.data(), g.data(), 0.01f, step, 0.5f);
    lo.step(sliced.data(), g.data(), 0.01f, step, 0.5f);
    hi.step(sliced.data(), g.data() + 2, 0.01f, step, 0.5f);
  }
  EXPECT_EQ(whole, sliced);
  EXPECT_EQ(hi.size(), 3u);
}

TEST(AdamW, DecayOfOneDimensionalParametersIsConfigurable) {
  ParamTable t;
  t.add("b", {1}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  t.place(0, 1);
  OptimConfig o;
  o.weight_decay = 0.5f;
  o.decay_1d = true;
  AdamW opt(ph::test::cpu(), o, t);
  std::vector<float> p(t.total(), 0.0f), g(t.total(), 0.0f);
  p[0] = 2.0f;
  opt.step(p.data(), g.data(), 0.1f, 1, 1.0f);  // zero gradient: only decay acts
  EXPECT_NEAR(p[0], 2.0 - 0.1 * 0.5 * 2.0, 1e-6);
}

TEST(Clipping, ScaleAndNorm) {
  ParamTable t;
  t.add("w", {2}, Split::Dim0, InitKind::Zeros, 0.0f, true);
  t.add("ln", {1}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  t.place(0, 1);
  std::vector<float> g = {3.0f, 4.0f, 12.0f};
  EXPECT_DOUBLE_EQ(grad_sq_sum(ph::test::cpu(), t, g.data(), 0, 3, true), 169.0);
  EXPECT_DOUBLE_EQ(grad_sq_sum(ph::test::cpu(), t, g.data(), 0, 3, false),
                   25.0);  // replicated counted elsewhere
  EXPECT_DOUBLE_EQ(grad_sq_sum(ph::test::cpu(), t, g.data() + 1, 1, 3, true),
                   160.0);  // a ZeRO slice
  EXPECT_NEAR(std::sqrt(grad_sq_sum(ph::test::cpu(), t, g.data(), 0, 3, true)), 13.0, 1e-12);
  EXPECT_NEAR(clip_scale(5.0, 1.0f), 0.2, 1e-6);
  EXPECT_EQ(clip_scale(0.5, 1.0f), 1.0f);
  EXPECT_EQ(clip_scale(50.0, 0.0f), 1.0f);  // disabled
}

}  // namespace
}  // namespace ph
