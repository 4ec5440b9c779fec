// The shape of one attention call under test (kernels/cpu/attention.h): sizes, causal and key
// padding masks, dropout and the call's place in the unsharded tensors. The CPU kernel tests
// extend it with a double-precision reference, the CUDA tests with their row launch plan.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/common/dropout_mask.h"
#include "kernels/cpu/attention.h"

namespace ph::test {

struct AttentionShape {
  int B = 2, T = 5, C = 12, H = 3;
  bool causal = true;
  std::vector<uint8_t> key_mask;  // empty: none
  DropoutSpec drop;
  cpu::AttentionCoords coords;

  int hs() const { return C / H; }
  size_t qkv_size() const { return static_cast<size_t>(B) * T * 3 * C; }
  size_t out_size() const { return static_cast<size_t>(B) * T * C; }
  size_t att_size() const { return static_cast<size_t>(B) * H * T * T; }
  const uint8_t* mask() const { return key_mask.empty() ? nullptr : key_mask.data(); }
  bool visible(int b, int i, int j) const {
    return (!causal || j <= i) && (key_mask.empty() || key_mask[b * T + j] != 0);
  }
  // Dropout index of probability (b, h, i, j), as kernels/cpu/attention.h defines it.
  uint64_t drop_index(int b, int h, int i, int j) const {
    const int Ht = coords.H_total > 0 ? coords.H_total : H;
    return (static_cast<uint64_t>((coords.sample0 + b) * Ht + coords.head0 + h) * T + i) * T + j;
  }
};

}  // namespace ph::test
