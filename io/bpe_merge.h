// The merge step of byte-level BPE on one piece: the piece's bytes start as one symbol each and
// the adjacent pair of lowest rank merges (the leftmost of equal ranks) until no adjacent pair
// has a merge. Short pieces scan for the minimum (no allocation); long ones keep the pairs in a
// heap, so a piece of n bytes takes O(n log n) however long it is.
#pragma once
#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include "io/bpe_files.h"

namespace ph {

class BpeMerger {
 public:
  explicit BpeMerger(const BpeVocab& vocab);

  // Appends the tokens of `piece` (non-empty) to `out`.
  void merge(std::string_view piece, std::vector<int32_t>& out) const;

  // The number of distinct mergeable pairs.
  size_t pairs() const { return pairs_; }

 private:
  // rank << 32 | result of merging (left, right), or kNone.
  static constexpr uint64_t kNone = ~uint64_t{0};
  uint64_t lookup(int32_t left, int32_t right) const {
    const uint64_t key =
        static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32 | static_cast<uint32_t>(right);
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == key) return s.value;
      if (s.key == kNone) return kNone;
    }
  }
  size_t slot_of(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  void merge_short(std::string_view piece, std::vector<int32_t>& out) const;
  void merge_long(std::string_view piece, std::vector<int32_t>& out) const;

  struct Slot {
    uint64_t key = kNone;
    uint64_t value = kNone;
  };
  std::vector<Slot> slots_;  // open addressing, linear probing
  size_t mask_ = 0;
  int shift_ = 64;
  size_t pairs_ = 0;
  std::array<int32_t, 256> byte_ids_{};
};

}  // namespace ph
