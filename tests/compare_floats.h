// Element-wise comparisons of float buffers against the CPU backend, shared by the CUDA host
// tests. Each reports the first differing element and stops.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

namespace ph::testing {

// Equal bits (so NaN equals NaN of the same payload and -0 differs from 0).
inline void expect_bits(const std::vector<float>& got, const std::vector<float>& ref,
                        const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (std::memcmp(&got[i], &ref[i], sizeof(float)) != 0) {
      ADD_FAILURE() << what << ": element " << i << " is " << got[i] << ", CPU has " << ref[i];
      return;
    }
  }
}

// |got - ref| <= atol + rtol |ref| elementwise; NaN only where the reference is NaN. With
// rtol = atol = 0: equal values (-0 equals 0).
inline void expect_close(const std::vector<float>& got, const std::vector<float>& ref, double rtol,
                         double atol, const std::string& what) {
  ASSERT_EQ(got.size(), ref.size()) << what;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double g = got[i], r = ref[i];
    if (std::isnan(r) || std::isnan(g)) {
      if (std::isnan(r) != std::isnan(g)) {
        ADD_FAILURE() << what << ": element " << i << " is " << g << ", CPU has " << r;
        return;
      }
      continue;
    }
    if (std::fabs(g - r) > atol + rtol * std::fabs(r)) {
      ADD_FAILURE() << what << ": element " << i << " is " << g << ", CPU has " << r;
      return;
    }
  }
}

}  // namespace ph::testing
