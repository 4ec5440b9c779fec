// Parameter initialisation as a pure function of (seed, parameter name, global element
// index): any sharding of the parameter reproduces the same full tensor.
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/common/philox.h"
#include "kernels/common/rng_streams.h"

namespace ph {

// Standard normal sample for element `index` of stream (seed, name_hash), Box-Muller on two
// Philox words of the element's own counter.
PH_HD float normal_at(uint64_t seed, uint32_t name_hash, uint64_t index) {
  const Philox4 r =
      philox4x32(static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), name_hash,
                 rng::kInitB, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  const float u1 = (static_cast<float>(r.v[0] >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  const float u2 = static_cast<float>(r.v[1] >> 8) * (1.0f / 16777216.0f);           // [0, 1)
  return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
}

}  // namespace ph
