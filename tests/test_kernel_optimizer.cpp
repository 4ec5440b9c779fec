// The optimizer's CPU kernels: AdamW against a hand computation and the element update, the
// squared norm and the finiteness check, and the calls over many ranges (every parameter
// tensor at once) against the calls per range, bit for bit and across thread counts.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/common/adamw.h"
#include "kernels/cpu/optimizer.h"
#include "tests/reference_checks.h"

namespace ph {
namespace {

using testing::bit_equal;
using testing::FVec;
using testing::random_floats;
using testing::rel_err;
using testing::to_double;
using testing::with_threads;

TEST(Optimizer, AdamWTwoStepsByHand) {
  // p = 1, lr 0.1, betas (0.9, 0.999), eps 1e-8, weight decay 0.01; gradients 0.5 then -0.25.
  // step 1: m = 0.05, v = 2.5e-4, mhat = 0.5, vhat = 0.25,
  //         p = 1 - 0.1 * (0.5 / (0.5 + 1e-8) + 0.01 * 1) = 0.899000002
  // step 2: m = 0.02, v = 3.1225e-4, mhat = 0.02 / 0.19, vhat = 3.1225e-4 / 0.001999,
  //         p = 0.899000002 - 0.1 * (mhat / (sqrt(vhat) + 1e-8) + 0.01 * 0.899000002)
  //           = 0.8714672987
  // The second element gets doubled gradients with grad_scale 0.5 (clipping): same path.
  FVec p = {1.0f, 1.0f}, m = {0.0f, 0.0f}, v = {0.0f, 0.0f};
  AdamWParams a{};
  a.lr = 0.1f;
  a.beta1 = 0.9f;
  a.beta2 = 0.999f;
  a.eps = 1e-8f;
  a.weight_decay = 0.01f;
  const float grads[2][2] = {{0.5f, 1.0f}, {-0.25f, -0.5f}};
  const double want_p[2] = {0.899000002, 0.8714672987};
  const double want_m[2] = {0.05, 0.02};
  const double want_v[2] = {2.5e-4, 3.1225e-4};
  for (int t = 1; t <= 2; ++t) {
    a.bias_correction1 = 1.0f - std::pow(a.beta1, static_cast<float>(t));
    a.bias_correction2 = 1.0f - std::pow(a.beta2, static_cast<float>(t));
    for (int e = 0; e < 2; ++e) {
      a.grad_scale = e == 0 ? 1.0f : 0.5f;
      cpu::adamw_update(&p[e], &grads[t - 1][e], &m[e], &v[e], 1, a);
      EXPECT_NEAR(p[e], want_p[t - 1], 2e-6) << "step " << t << " element " << e;
      // float's 1 - beta2 is 0.00099998713: v is within 2e-5 relative of the exact value.
      EXPECT_NEAR(m[e], want_m[t - 1], 1e-7);
      EXPECT_NEAR(v[e], want_v[t - 1], 2e-5 * want_v[t - 1]);
    }
  }
}

TEST(Optimizer, AdamWOverABufferEqualsTheElementUpdate) {
  const size_t n = 1000 + 3;
  FVec p = random_floats(n, 81), g = random_floats(n, 82), m = random_floats(n, 83, -0.1f, 0.1f);
  FVec v = random_floats(n, 84, 0.0f, 0.01f);
  FVec p2 = p, m2 = m, v2 = v;
  AdamWParams a{0.01f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 0.3f, 0.8f};
  cpu::adamw_update(p.data(), g.data(), m.data(), v.data(), n, a);
  for (size_t i = 0; i < n; ++i) adamw_element(p2[i], g[i], m2[i], v2[i], a);
  EXPECT_LT(rel_err(p, to_double(p2)), 1e-6);
  EXPECT_LT(rel_err(m, to_double(m2)), 1e-6);
  EXPECT_LT(rel_err(v, to_double(v2)), 1e-6);
}

TEST(Optimizer, SumSquaresAndAllFinite) {
  const size_t n = (size_t{5} << 20) + 13;  // more blocks than one pass holds
  const FVec x = random_floats(n, 85, -2.0f, 2.0f);
  double ref = 0.0;
  for (float f : x) ref += static_cast<double>(f) * f;
  double s1 = 0.0, s2 = 0.0;
  with_threads(1, [&] { s1 = cpu::sum_squares(x.data(), n); });
  with_threads(2, [&] { s2 = cpu::sum_squares(x.data(), n); });
  EXPECT_NEAR(s1, ref, 1e-10 * ref);
  EXPECT_EQ(std::memcmp(&s1, &s2, sizeof(double)), 0);  // bit-exact across thread counts
  EXPECT_EQ(cpu::sum_squares(x.data(), 0), 0.0);
  EXPECT_DOUBLE_EQ(cpu::sum_squares(x.data(), 3), static_cast<double>(x[0]) * x[0] +
                                                      static_cast<double>(x[1]) * x[1] +
                                                      static_cast<double>(x[2]) * x[2]);

  FVec y(1001, 1.0f);
  EXPECT_TRUE(cpu::all_finite(y.data(), y.size()));
  EXPECT_TRUE(cpu::all_finite(y.data(), 0));
  y[1000] = std::numeric_limits<float>::infinity();
  EXPECT_FALSE(cpu::all_finite(y.data(), y.size()));
  EXPECT_TRUE(cpu::all_finite(y.data(), 1000));
  y[1000] = 1.0f;
  y[17] = -std::numeric_limits<float>::infinity();
  EXPECT_FALSE(cpu::all_finite(y.data(), y.size()));
  y[17] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(cpu::all_finite(y.data(), y.size()));
  y[17] = std::numeric_limits<float>::max();
  EXPECT_TRUE(cpu::all_finite(y.data(), y.size()));
}

// Ranges like a parameter table's: one element, a LayerNorm's, a block and a bit, several
// blocks (16384 elements each), with gaps between them that no range covers.
std::vector<AdamWRange> table_like_ranges() {
  return {{0, 1, 0.0f},
          {3, 3 + 384, 0.1f},
          {400, 400 + 16384 + 5, 0.0f},
          {16800, 16800 + 3 * 16384, 0.25f},
          {66000, 66000 + 1536, 0.1f}};
}

TEST(Optimizer, AdamWOverRangesEqualsOneCallPerRange) {
  const std::vector<AdamWRange> ranges = table_like_ranges();
  const size_t n = ranges.back().end + 7;
  const FVec g = random_floats(n, 91);
  const FVec p0 = random_floats(n, 92), m0 = random_floats(n, 93, -0.1f, 0.1f);
  const FVec v0 = random_floats(n, 94, 0.0f, 0.01f);
  AdamWParams a{0.01f, 0.9f, 0.95f, 1e-8f, 0.5f, 0.5f, 0.3f, 0.8f};  // decay 0.5: replaced
  FVec p = p0, m = m0, v = v0;
  for (const AdamWRange& r : ranges) {
    AdamWParams ra = a;
    ra.weight_decay = r.weight_decay;
    cpu::adamw_update(&p[r.begin], &g[r.begin], &m[r.begin], &v[r.begin], r.end - r.begin, ra);
  }
  for (int threads : {1, 2, 3}) {
    FVec p2 = p0, m2 = m0, v2 = v0;
    with_threads(threads, [&] {
      cpu::adamw_update_ranges(p2.data(), g.data(), m2.data(), v2.data(), ranges.data(),
                               ranges.size(), a);
    });
    EXPECT_TRUE(bit_equal(p2, p)) << threads << " threads";
    EXPECT_TRUE(bit_equal(m2, m)) << threads << " threads";
    EXPECT_TRUE(bit_equal(v2, v)) << threads << " threads";
  }
  // The elements between the ranges are untouched, and the ranges were updated.
  EXPECT_EQ(p[1], p0[1]);
  EXPECT_EQ(p[2], p0[2]);
  EXPECT_EQ(p[n - 1], p0[n - 1]);
  EXPECT_NE(p[0], p0[0]);
  EXPECT_NE(p[66000], p0[66000]);
}

TEST(Optimizer, SumSquaresOverRangesEqualsSumSquaresPerRange) {
  std::vector<AdamWRange> ranges = table_like_ranges();
  ranges.push_back({70000, 70000 + (size_t{5} << 20) + 13, 0.0f});  // more than one pass
  const size_t n = ranges.back().end + 3;
  const FVec x = random_floats(n, 95, -2.0f, 2.0f);
  std::vector<size_t> begin, end;
  for (const AdamWRange& r : ranges) {
    begin.push_back(r.begin);
    end.push_back(r.end);
  }
  for (int threads : {1, 2, 3}) {
    std::vector<double> got(ranges.size(), -1.0);
    with_threads(threads, [&] {
      cpu::sum_squares_ranges(got.data(), x.data(), begin.data(), end.data(), ranges.size());
    });
    for (size_t i = 0; i < ranges.size(); ++i) {
      const double want = cpu::sum_squares(x.data() + begin[i], end[i] - begin[i]);
      EXPECT_EQ(std::memcmp(&got[i], &want, sizeof(double)), 0)
          << "range " << i << ", " << threads << " threads: " << got[i] << " vs " << want;
    }
  }
}

}  // namespace
}  // namespace ph
