// Helpers of the CPU kernel tests: double-precision references, normwise errors, central
// finite differences, and runs under a given number of OpenMP threads.
#pragma once
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <vector>

#include "tests/random_data.h"

namespace ph::testing {

using Vec = std::vector<double>;

inline constexpr double kTol = 1e-5;    // kernel (float) vs double reference, normwise
inline constexpr double kFdTol = 1e-4;  // kernel backward vs central differences of the reference

inline Vec to_double(const FVec& v) {
  return Vec(v.begin(), v.end());
}

// Normwise relative error: max |got - ref| / max |ref|.
inline double rel_err(const Vec& got, const Vec& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, std::fabs(got[i] - ref[i]));
    den = std::max(den, std::fabs(ref[i]));
  }
  return num / std::max(den, 1e-30);
}
inline double rel_err(const FVec& got, const Vec& ref) {
  return rel_err(to_double(got), ref);
}

// What an accumulating backward added to a buffer that started as `before`.
inline Vec added(const FVec& after, const FVec& before) {
  Vec d(after.size());
  for (size_t i = 0; i < after.size(); ++i) {
    d[i] = static_cast<double>(after[i]) - static_cast<double>(before[i]);
  }
  return d;
}

// Central differences of L(x) = sum_i w_i f(x)_i in double, for every element of x.
inline Vec fd_grad(Vec x, const Vec& w, const std::function<Vec(const Vec&)>& f, double h = 1e-6) {
  Vec g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const Vec fp = f(x);
    x[i] = x0 - h;
    const Vec fm = f(x);
    x[i] = x0;
    double l = 0.0;
    for (size_t k = 0; k < w.size(); ++k) l += w[k] * (fp[k] - fm[k]);
    g[i] = l / (2.0 * h);
  }
  return g;
}

// Runs fn with the given number of OpenMP threads, then restores the previous setting.
template <typename Fn>
void with_threads(int n, Fn fn) {
  const int before = omp_get_max_threads();
  omp_set_num_threads(n);
  fn();
  omp_set_num_threads(before);
}

template <typename T>
bool bit_equal(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

}  // namespace ph::testing
