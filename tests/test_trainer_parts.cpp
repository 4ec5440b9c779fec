// Learning-rate schedules, AdamW and clipping against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/param_table.h"
#include "tests/test_backend.h"
#include "trainer/optimizer.h"
#include "trainer/schedule.h"
#include "trainer/training_log.h"

namespace ph {
namespace {

OptimConfig sched(Schedule kind) {
  OptimConfig o;
  o.lr = 1.0f;
  o.min_lr = 0.1f;
  o.warmup_steps = 10;
  o.schedule = kind;
  return o;
}

TEST(Schedule, LinearWarmupFromLrOverWarmup) {
  const OptimConfig o = sched(Schedule::kCosine);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 0, 64), 0.1f);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 4, 64), 0.5f);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 9, 64), 1.0f);
}

TEST(Schedule, CosineDecaysToMinLr) {
  const OptimConfig o = sched(Schedule::kCosine);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 10, 64), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 60, 64), 0.55f);  // halfway: min + (lr-min)/2
  EXPECT_NEAR(learning_rate(o, 110, 35, 64), 0.1 + 0.45 * (1 + std::cos(M_PI * 0.25)), 1e-6);
  EXPECT_FLOAT_EQ(learning_rate(o, 110, 110, 64), 0.1f);
}

TEST(Schedule, LinearConstantInverseSqrt) {
  EXPECT_FLOAT_EQ(learning_rate(sched(Schedule::kLinear), 110, 60, 64), 0.55f);
  EXPECT_FLOAT_EQ(learning_rate(sched(Schedule::kLinear), 110, 85, 64), 0.325f);
  EXPECT_FLOAT_EQ(learning_rate(sched(Schedule::kConstant), 110, 100, 64), 1.0f);
  // inverse_sqrt: lr * sqrt(warmup / (step + 1)), floored at min_lr.
  EXPECT_FLOAT_EQ(learning_rate(sched(Schedule::kInverseSqrt), 110, 9, 64), 1.0f);
  EXPECT_FLOAT_EQ(learning_rate(sched(Schedule::kInverseSqrt), 110, 39, 64), 0.5f);
  EXPECT_FLOAT_EQ(learning_rate(sched(Schedule::kInverseSqrt), 100000, 99999, 64), 0.1f);
}

// The Transformer paper's schedule: lr · d^-0.5 · min(s^-0.5, s · w^-1.5) with 1-based s.
TEST(Schedule, NoamRisesLinearlyThenDecaysAsInverseSqrt) {
  OptimConfig o = sched(Schedule::kNoam);
  o.lr = 2.0f;
  o.min_lr = 0.0f;
  o.warmup_steps = 4000;
  const int d = 512;
  // Step s = 1: 2 / sqrt(512) * 1 * 4000^-1.5; the peak at s = 4000: 2 / sqrt(512 * 4000).
  EXPECT_NEAR(learning_rate(o, 100000, 0, d), 2.0 / std::sqrt(512.0) * std::pow(4000.0, -1.5),
              1e-12);
  EXPECT_NEAR(learning_rate(o, 100000, 3999, d), 2.0 / std::sqrt(512.0 * 4000.0), 1e-9);
  EXPECT_NEAR(learning_rate(o, 100000, 15999, d), 2.0 / std::sqrt(512.0 * 16000.0), 1e-9);
  // Warmup is linear in s: step 2000 (s = 2000) is half the peak.
  EXPECT_NEAR(learning_rate(o, 100000, 1999, d), 0.5 * learning_rate(o, 100000, 3999, d), 1e-9);
  // It depends on the model width; after the peak it is floored at min_lr.
  EXPECT_NEAR(learning_rate(o, 100000, 3999, 128), 2.0 / std::sqrt(128.0 * 4000.0), 1e-9);
  o.min_lr = 1e-3f;
  EXPECT_FLOAT_EQ(learning_rate(o, 100000, 99999, d), 1e-3f);
  EXPECT_LT(learning_rate(o, 100000, 0, d), 1e-3f);  // not during warmup
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
  EXPECT_DOUBLE_EQ(GradNorm(ph::test::cpu(), t, 0, 3, true).sum_squares(g.data()), 169.0);
  GradNorm no_replicated(ph::test::cpu(), t, 0, 3, false);  // replicated counted elsewhere
  EXPECT_DOUBLE_EQ(no_replicated.sum_squares(g.data()), 25.0);
  GradNorm slice(ph::test::cpu(), t, 1, 3, true);  // a ZeRO slice
  EXPECT_DOUBLE_EQ(slice.sum_squares(g.data() + 1), 160.0);
  g[2] = 1.0f;  // the ranges are fixed, the values are read at each call
  EXPECT_DOUBLE_EQ(slice.sum_squares(g.data() + 1), 17.0);
  EXPECT_NEAR(clip_scale(5.0, 1.0f), 0.2, 1e-6);
  EXPECT_EQ(clip_scale(0.5, 1.0f), 1.0f);
  EXPECT_EQ(clip_scale(50.0, 0.0f), 1.0f);  // disabled
}

// Resuming keeps the metrics records up to the checkpoint's step; a record cut short by a kill
// (the last line, without its closing brace) or any unreadable line is dropped and counted, not
// fatal.
TEST(TrainingLog, MetricsUpToKeepsWholeRecordsUpToTheStep) {
  const std::string text =
      "{\"step\": 10, \"train_loss\": 2.5}\n"
      "{\"step\": 20, \"train_loss\": 2.1}\n"
      "not a record\n"
      "{\"step\": 30, \"train_loss\": 1.9}\n"
      "{\"step\": 4";  // killed while writing step 40
  KeptMetrics k = metrics_up_to(text, 20);
  EXPECT_EQ(k.text, "{\"step\": 10, \"train_loss\": 2.5}\n{\"step\": 20, \"train_loss\": 2.1}\n");
  EXPECT_EQ(k.unreadable, 2);
  k = metrics_up_to(text, 100);
  EXPECT_EQ(k.text,
            "{\"step\": 10, \"train_loss\": 2.5}\n{\"step\": 20, \"train_loss\": 2.1}\n"
            "{\"step\": 30, \"train_loss\": 1.9}\n");
  EXPECT_EQ(metrics_up_to("{\"step\": \n{\"step\": x}\n", 100).text, "");
  EXPECT_EQ(metrics_up_to("{\"step\": \n{\"step\": x}\n", 100).unreadable, 2);
  EXPECT_EQ(metrics_up_to("", 5).text, "");
  EXPECT_EQ(metrics_up_to("", 5).unreadable, 0);
}

}  // namespace
}  // namespace ph
