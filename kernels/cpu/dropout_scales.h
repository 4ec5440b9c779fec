// Dropout masks for runs of consecutive elements (internal to kernels/cpu).
#pragma once
#include <cstdint>

#include "kernels/common/dropout_mask.h"

namespace ph::cpu {

// scales[i] = dropout_scale(d.p) if element index0 + i survives, else 0, for i in [0, n).
// The bits are those of dropout_keep (kernels/common/dropout_mask.h), which draws element
// `index` as word index % 4 of the Philox block with counter index / 4. Calling dropout_keep
// per element computes each block four times and does not vectorise (~9.5 ns per element on
// the target); here one Philox call serves the four elements of its block and the loop over
// blocks vectorises (~0.7 ns per element). The kernel tests check both agree bit for bit.
inline void dropout_scales(float* scales, const DropoutSpec& d, uint64_t index0, int n) {
  const float p = d.p;
  const float keep = dropout_scale(p);
  int i = 0;
  for (; i < n && ((index0 + static_cast<uint64_t>(i)) & 3u) != 0; ++i) {
    scales[i] = dropout_keep(d, index0 + static_cast<uint64_t>(i)) ? keep : 0.0f;
  }
  const uint32_t step = d.step, site = d.site;
  const uint32_t seed_lo = static_cast<uint32_t>(d.seed);
  const uint32_t seed_hi = static_cast<uint32_t>(d.seed >> 32);
  const uint64_t block0 = (index0 + static_cast<uint64_t>(i)) >> 2;
  const int blocks = (n - i) / 4;
  float* s = scales + i;
  for (int g = 0; g < blocks; ++g) {
    const uint64_t c = block0 + static_cast<uint64_t>(g);
    const Philox4 r = philox4x32(static_cast<uint32_t>(c), static_cast<uint32_t>(c >> 32), step,
                                 site, seed_lo, seed_hi);
    for (int w = 0; w < 4; ++w) s[4 * g + w] = uniform_from_bits(r.v[w]) >= p ? keep : 0.0f;
  }
  for (i += 4 * blocks; i < n; ++i) {
    scales[i] = dropout_keep(d, index0 + static_cast<uint64_t>(i)) ? keep : 0.0f;
  }
}

}  // namespace ph::cpu
