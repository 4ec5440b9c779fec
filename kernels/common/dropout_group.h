// Dropout decisions four at a time: the Philox block behind dropout_keep for the elements
// 4 g .. 4 g + 3 (word w decides element 4 g + w). A kernel that walks elements in these
// groups draws each block once instead of once per element; the bits are those of
// dropout_keep (kernels/common/dropout_mask.h) exactly.
#pragma once
#include <cstdint>

#include "kernels/common/dropout_mask.h"
#include "kernels/common/philox.h"

namespace ph {

// The four random words of group g = index / 4.
PH_HD Philox4 dropout_group_bits(const DropoutSpec& d, uint64_t group) {
  return philox4x32(static_cast<uint32_t>(group), static_cast<uint32_t>(group >> 32), d.step,
                    d.site, static_cast<uint32_t>(d.seed), static_cast<uint32_t>(d.seed >> 32));
}

// True when the element whose word is `bits` survives (dropout_keep on a drawn word).
PH_HD bool dropout_keep_bits(const DropoutSpec& d, uint32_t bits) {
  return uniform_from_bits(bits) >= d.p;
}

}  // namespace ph
