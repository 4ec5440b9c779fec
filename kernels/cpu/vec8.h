// Eight floats as one value, for the CPU kernels' hand-blocked loops (internal to kernels/cpu):
// one AVX register where the target has AVX (the portable build's x86-64-v3), two SSE registers
// otherwise; a*b + c contracts to a fused multiply-add where FMA exists.
#pragma once
#include <cstring>

namespace ph::cpu {

typedef float f8 __attribute__((vector_size(32)));

inline f8 load8(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline f8 splat(float x) {
  return f8{x, x, x, x, x, x, x, x};
}

}  // namespace ph::cpu
