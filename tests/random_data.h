// Random test data shared by the CUDA host tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace ph::testing {

using FVec = std::vector<float>;

// n floats uniform in [lo, hi), reproducible from seed.
inline FVec random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  FVec v(n);
  for (float& x : v) x = dist(gen);
  return v;
}

}  // namespace ph::testing
