// bfloat16 (1 sign, 8 exponent, 7 stored mantissa bits: the upper half of an IEEE float)
// rounding shared by the CPU and CUDA backends, so that the CPU reference and the GPU's
// conversion kernel round every operand identically.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/common/hostdevice.h"

namespace ph {

namespace bf16_detail {

// The bits of a float as an integer and back: a copy (no aliasing question), which both g++ and
// nvcc (device code included) compile to a register move.
template <typename To, typename From>
PH_HD To bit_copy(From x) {
  static_assert(sizeof(To) == sizeof(From));
  To y;
  std::memcpy(&y, &x, sizeof y);
  return y;
}

}  // namespace bf16_detail

// The bfloat16 nearest to x, ties to even (the IEEE default rounding), as its 16 bits. Values
// beyond the largest finite bfloat16 round to ±Inf as round-to-nearest demands (from
// 0x1.ffp127 up); ±Inf and ±0 are kept; denormals round like any other value (no flush to
// zero). A NaN stays a NaN: its sign and the upper payload bits are kept and the quiet bit is
// set, so that dropping the low payload bits can never turn it into Inf.
PH_HD uint16_t bf16_bits(float x) {
  const auto u = bf16_detail::bit_copy<uint32_t>(x);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff rounds the dropped half up when it exceeds one half; the kept lowest bit
  // adds the last unit at exactly one half when that bit is odd (ties to even). A carry out of
  // the mantissa steps the exponent, up to Inf.
  const uint32_t rounded = u + 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(rounded >> 16);
}

// The float with the same value as the bfloat16 `bits` (exact: a bfloat16 is a float with the
// lower 16 bits zero).
PH_HD float bf16_to_float(uint16_t bits) {
  return bf16_detail::bit_copy<float>(static_cast<uint32_t>(bits) << 16);
}

// x rounded to the nearest bfloat16, as a float.
PH_HD float round_bf16(float x) {
  return bf16_to_float(bf16_bits(x));
}

}  // namespace ph
