// AdamW over a flat buffer, and the reductions used for clipping and fault detection.
#include "kernels/cpu/optimizer.h"

#include <algorithm>
#include <bit>
#include <cstdint>

namespace ph::cpu {

namespace {

constexpr size_t kBlock = size_t{1} << 14;  // elements per task
constexpr size_t kBlocksPerPass = 256;      // partial sums held on the stack per pass

}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                  const AdamWParams& a) {
  const AdamWParams args = a;  // a local copy: the loop need not reload it through a pointer
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) adamw_element(params[i], grads[i], m[i], v[i], args);
}

double sum_squares(const float* x, size_t n) {
  // Blocks of kBlock elements are summed in parallel, then their partial sums are added in
  // block order: the same additions in the same order for any thread count.
  double total = 0.0;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  for (size_t first = 0; first < blocks; first += kBlocksPerPass) {
    const size_t count = std::min(kBlocksPerPass, blocks - first);
    double partial[kBlocksPerPass];
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < count; ++k) {
      const size_t i0 = (first + k) * kBlock, i1 = std::min(n, i0 + kBlock);
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (size_t i = i0; i < i1; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
      partial[k] = s;
    }
    for (size_t k = 0; k < count; ++k) total += partial[k];
  }
  return total;
}

bool all_finite(const float* x, size_t n) {
  uint32_t bad = 0;  // an exponent of all ones is Inf or NaN
#pragma omp parallel for simd reduction(| : bad) schedule(static)
  for (size_t i = 0; i < n; ++i)
    bad |= (std::bit_cast<uint32_t>(x[i]) & 0x7f800000u) == 0x7f800000u;
  return bad == 0;
}

}  // namespace ph::cpu
