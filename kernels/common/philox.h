// Philox4x32-10 counter-based generator (Salmon et al., "Parallel random numbers: as easy
// as 1, 2, 3", SC'11). A draw is a pure function of (key, counter): no state, so any
// element of any tensor can get its random bits on any rank, in forward or in backward.
#pragma once
#include <cstdint>

#include "kernels/common/hostdevice.h"

namespace ph {

struct Philox4 {
  uint32_t v[4];
};

PH_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox4x32 on counter c with key (k0, k1).
PH_HD Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0,
                         uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(0xD2511F53u, c0, hi0, lo0);
    philox_mulhilo(0xCD9E8D57u, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n1 = lo1;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    const uint32_t n3 = lo0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// 32 random bits for element `index` of stream (seed, a, b). Four consecutive elements
// share one Philox call (index / 4 is the counter, index % 4 picks the word).
PH_HD uint32_t philox_bits(uint64_t seed, uint32_t a, uint32_t b, uint64_t index) {
  const uint64_t group = index >> 2;
  const Philox4 r = philox4x32(static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32), a,
                               b, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
  return r.v[index & 3u];
}

// Uniform float in [0, 1) from 32 bits (24 significant bits, exactly representable).
PH_HD float uniform_from_bits(uint32_t bits) {
  return static_cast<float>(bits >> 8) * (1.0f / 16777216.0f);
}

// FNV-1a hash of a name: the stream id of a parameter's initialisation.
PH_HD constexpr uint32_t hash_name(const char* s) {
  uint32_t h = 2166136261u;
  for (; *s; ++s) {
    h ^= static_cast<uint8_t>(*s);
    h *= 16777619u;
  }
  return h;
}

}  // namespace ph
