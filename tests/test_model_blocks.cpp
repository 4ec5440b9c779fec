// The machinery of a model: gradient readiness (a tied weight is ready only after both users)
// and the activation plan (shared scratch sized by its largest request). The blocks the GPT does
// not use (cross-attention, key padding, the bidirectional encoder) are tested through the
// encoder-decoder (tests/test_model_encdec.cpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <stdexcept>
#include <utility>
#include <vector>

#include "model/activation_plan.h"
#include "model/grad_readiness.h"
#include "tests/test_backend.h"

namespace ph {
namespace {

TEST(GradReadiness, TiedParameterIsReadyAfterItsLastUserAndRangesMerge) {
  ParamTable t;
  const int wte = t.add("wte", {4, 2}, Split::Replicated, InitKind::Zeros, 0.0f, true);
  const int a = t.add("a", {3}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  const int b = t.add("b", {5}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  const int c = t.add("c", {1}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  t.place(0, 1);
  GradReadiness r;
  for (int p : {wte, a, b, c}) r.use(p);
  r.use(wte);  // a tied head
  std::vector<std::pair<size_t, size_t>> fired;
  r.set_hook([&](size_t off, size_t n) { fired.emplace_back(off, n); });
  for (int pass = 0; pass < 2; ++pass) {  // begin() resets every count
    fired.clear();
    r.begin();
    r.release({c, wte}, t);  // the head: c is ready, wte waits for its other user
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_EQ(fired[0], std::make_pair(size_t{16}, size_t{1}));
    r.release({b, a}, t);  // adjacent: one range [8, 16)
    ASSERT_EQ(fired.size(), 2u);
    EXPECT_EQ(fired[1], std::make_pair(size_t{8}, size_t{8}));
    r.release({wte}, t);
    ASSERT_EQ(fired.size(), 3u);
    EXPECT_EQ(fired[2], std::make_pair(size_t{0}, size_t{8}));
  }
  EXPECT_THROW(r.release({a}, t), std::logic_error);  // released more often than used
}

TEST(ActivationPlan, OwnedBuffersAreDistinctAndSharedOnesTakeTheLargestRequest) {
  ActivationPlan plan;
  float *x = nullptr, *y = nullptr, *s1 = nullptr, *s2 = nullptr, *none = nullptr;
  plan.own(&x, 10);
  plan.shared(&s1, "scratch", 100);
  plan.own(&y, 7);
  plan.shared(&s2, "scratch", 300);
  plan.own(&none, 0);
  DeviceBuffer<float> arena = plan.allocate(test::cpu());
  EXPECT_EQ(s1, s2);
  EXPECT_EQ(none, nullptr);
  // Disjoint, inside the arena, each large enough: x [10], scratch [300], y [7].
  std::vector<std::pair<float*, size_t>> parts = {{x, 10}, {s1, 300}, {y, 7}};
  for (auto& [p, n] : parts) {
    EXPECT_GE(p, arena.data());
    EXPECT_LE(p + n, arena.data() + arena.size());
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 256, 0u);
    for (auto& [q, m] : parts) {
      if (p != q) {
        EXPECT_TRUE(p + n <= q || q + m <= p);
      }
    }
  }
  EXPECT_THROW(plan.own(&x, 1), std::logic_error);
}

}  // namespace
}  // namespace ph
