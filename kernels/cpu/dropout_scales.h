// Dropout masks for runs of consecutive elements (internal to kernels/cpu).
#pragma once
#include <cstdint>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "kernels/common/dropout_mask.h"

namespace ph::cpu {

#if defined(__AVX2__)
namespace detail {

// Philox4x32-10 (kernels/common/philox.h) on the eight counters (lo[i], hi[i], c2, c3), one per
// 32-bit lane, and the dropout scales of their 32 words: s[4 i + w] is the scale of word w of
// counter i, as dropout_scales' scalar loop computes it. g++ vectorises that loop with shuffles
// that pair the 64-bit products back into words and interleave the four words per block; here
// each word of the eight blocks has its own register, so a round is two even/odd multiplies per
// word pair and the words are interleaved once, at the end.
inline void philox_scales8(float* s, __m256i c0, __m256i c1, uint32_t c2, uint32_t c3, uint32_t k0,
                           uint32_t k1, float p, float keep) {
  const __m256i m0 = _mm256_set1_epi32(static_cast<int>(0xD2511F53u));
  const __m256i m1 = _mm256_set1_epi32(static_cast<int>(0xCD9E8D57u));
  __m256i x2 = _mm256_set1_epi32(static_cast<int>(c2));
  __m256i x3 = _mm256_set1_epi32(static_cast<int>(c3));
  for (int r = 0; r < 10; ++r) {
    // 64-bit products of the even lanes, and of the odd lanes moved down
    const __m256i p0e = _mm256_mul_epu32(c0, m0);
    const __m256i p0o = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
    const __m256i p1e = _mm256_mul_epu32(x2, m1);
    const __m256i p1o = _mm256_mul_epu32(_mm256_srli_epi64(x2, 32), m1);
    const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(p0e, 32), p0o, 0xAA);
    const __m256i lo0 = _mm256_blend_epi32(p0e, _mm256_slli_epi64(p0o, 32), 0xAA);
    const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(p1e, 32), p1o, 0xAA);
    const __m256i lo1 = _mm256_blend_epi32(p1e, _mm256_slli_epi64(p1o, 32), 0xAA);
    const __m256i n0 =
        _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32(static_cast<int>(k0)));
    const __m256i n2 =
        _mm256_xor_si256(_mm256_xor_si256(hi0, x3), _mm256_set1_epi32(static_cast<int>(k1)));
    c0 = n0;
    c1 = lo1;
    x2 = n2;
    x3 = lo0;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  // uniform_from_bits(word) >= p ? keep : 0, word by word
  const __m256 unit = _mm256_set1_ps(1.0f / 16777216.0f);
  const __m256 pv = _mm256_set1_ps(p);
  const __m256 kv = _mm256_set1_ps(keep);
  const auto scale = [&](__m256i w) {
    const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(w, 8)), unit);
    return _mm256_and_ps(_mm256_cmp_ps(u, pv, _CMP_GE_OQ), kv);
  };
  const __m256 v0 = scale(c0), v1 = scale(c1), v2 = scale(x2), v3 = scale(x3);
  // transpose: lane i of v0..v3 -> s[4 i .. 4 i + 3]
  const __m256 t0 = _mm256_unpacklo_ps(v0, v1), t1 = _mm256_unpackhi_ps(v0, v1);
  const __m256 t2 = _mm256_unpacklo_ps(v2, v3), t3 = _mm256_unpackhi_ps(v2, v3);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  _mm256_storeu_ps(s, _mm256_permute2f128_ps(u0, u1, 0x20));
  _mm256_storeu_ps(s + 8, _mm256_permute2f128_ps(u2, u3, 0x20));
  _mm256_storeu_ps(s + 16, _mm256_permute2f128_ps(u0, u1, 0x31));
  _mm256_storeu_ps(s + 24, _mm256_permute2f128_ps(u2, u3, 0x31));
}

}  // namespace detail
#endif

// scales[i] = dropout_scale(d.p) if element index0 + i survives, else 0, for i in [0, n).
// The bits are those of dropout_keep (kernels/common/dropout_mask.h), which draws element
// `index` as word index % 4 of the Philox block with counter index / 4. Calling dropout_keep
// per element computes each block four times and does not vectorise (~9.5 ns per element on
// the target); here one Philox call serves the four elements of its block, eight blocks at a
// time with AVX2 (philox_scales8: 1.29 ns per element on the 2-core target, against 2.6 ns for
// g++'s vectorisation of the scalar loop below). The kernel tests check both agree bit for bit.
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
  int g = 0;
#if defined(__AVX2__)
  for (; g + 8 <= blocks; g += 8) {
    alignas(32) uint32_t lo[8], hi[8];
    for (int l = 0; l < 8; ++l) {
      const uint64_t c = block0 + static_cast<uint64_t>(g + l);
      lo[l] = static_cast<uint32_t>(c);
      hi[l] = static_cast<uint32_t>(c >> 32);
    }
    detail::philox_scales8(s + 4 * g, _mm256_load_si256(reinterpret_cast<const __m256i*>(lo)),
                           _mm256_load_si256(reinterpret_cast<const __m256i*>(hi)), step, site,
                           seed_lo, seed_hi, p, keep);
  }
#endif
  for (; g < blocks; ++g) {
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
