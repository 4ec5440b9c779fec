// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial value and final xor ~0), the
// checksum of TFRecord framing (io/tfevents.h), computed in software one byte at a time.
#pragma once
#include <cstddef>
#include <cstdint>

namespace ph {

// The CRC-32C of n bytes at data ("123456789" gives 0xE3069283). `crc` continues an earlier
// result: crc32c(b, m, crc32c(a, n)) is the CRC of a followed by b.
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);

// TFRecord's masked form of a CRC: rotated right by 15 bits plus 0xA282EAD8 (mod 2^32), so that
// a checksum stored in the data it covers does not checksum to a fixed value.
constexpr uint32_t mask_crc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

}  // namespace ph
