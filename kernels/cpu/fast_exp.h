// exp for float that g++ can vectorise (internal to kernels/cpu).
//
// glibc's expf is a scalar call that sets errno, so a loop over it never vectorises without
// -ffast-math; softmax rows and the vocabulary log-sum-exp are dominated by it. This one is a
// plain inline function of adds, multiplies and bit operations: the same code runs in a
// vector lane and in a scalar remainder, so results do not depend on how a loop is split.
// Accuracy: within 2 ulp of the correctly rounded result; results below 2^-125 flush to 0.
// A file whose loops call it needs -fno-trapping-math (CMakeLists.txt sets it for attention.cpp
// and crossentropy.cpp): without it g++ leaves those loops scalar.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace ph::cpu {

inline float exp_vec(float x) {
  constexpr float kLo = -86.6f;     // below: the result is under 2^-125, returned as 0
  constexpr float kHi = 88.72283f;  // above: the result overflows to infinity
  // exp(x) = 2^n * exp(r) with n = round(x / ln 2) and |r| <= ln(2) / 2.
  const float xc = x > kLo ? (x < kHi ? x : kHi) : kLo;  // also maps NaN to kLo
  const float t = xc * 1.44269504088896341f;
  const float n = (t + 12582912.0f) - 12582912.0f;  // round to nearest: 1.5 * 2^23 trick
  float r = std::fma(n, -0.693359375f, xc);         // ln 2 split in a short high part ...
  r = std::fma(n, 2.12194440e-4f, r);               // ... and the rest
  // Taylor series of exp(r) to degree 7: truncation error < 1e-8 relative on |r| <= 0.347.
  float p = 1.0f / 5040.0f;
  p = std::fma(p, r, 1.0f / 720.0f);
  p = std::fma(p, r, 1.0f / 120.0f);
  p = std::fma(p, r, 1.0f / 24.0f);
  p = std::fma(p, r, 1.0f / 6.0f);
  p = std::fma(p, r, 0.5f);
  p = std::fma(p, r, 1.0f);
  p = std::fma(p, r, 1.0f);
  // 2^n as 2 * 2^(n-1): n - 1 lies in [-126, 127], where the exponent bits are a normal float.
  const float two_n1 = std::bit_cast<float>((static_cast<int32_t>(n) + 126) << 23);
  const float y = (p + p) * two_n1;
  if (x > kLo) return x <= kHi ? y : std::numeric_limits<float>::infinity();
  return x == x ? 0.0f : x;  // underflow to 0; NaN stays NaN
}

}  // namespace ph::cpu
