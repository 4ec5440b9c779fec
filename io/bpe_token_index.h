// Token bytes -> id, for the whole-piece rule and id_of: an open-addressing table of (hash
// tag, id) pairs over the tokens' own strings, probed with piece_hash (which the encoder has
// computed for its cache already).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_piece_cache.h"

namespace ph {

class BpeTokenIndex {
 public:
  // Indexes tokens[0..n); of equal byte strings the lowest id is found.
  explicit BpeTokenIndex(const std::vector<std::string>& tokens) : tokens_(tokens) {
    size_t capacity = 16;
    while (capacity < tokens.size() * 2) capacity *= 2;
    slots_.assign(capacity, Slot{0, -1});
    for (size_t id = 0; id < tokens.size(); ++id) {
      const uint64_t h = piece_hash(tokens[id]);
      if (find(tokens[id], h) < 0) {
        size_t i = h & (capacity - 1);
        while (slots_[i].id >= 0) i = (i + 1) & (capacity - 1);
        slots_[i] = Slot{tag(h), static_cast<int32_t>(id)};
      }
    }
  }

  // The id of `bytes` (h = piece_hash(bytes)), or -1.
  int32_t find(std::string_view bytes, uint64_t h) const {
    const size_t mask = slots_.size() - 1;
    const uint32_t t = tag(h);
    for (size_t i = h & mask;; i = (i + 1) & mask) {
      const Slot& s = slots_[i];
      if (s.id < 0) return -1;
      if (s.tag == t && tokens_[static_cast<size_t>(s.id)] == bytes) return s.id;
    }
  }

 private:
  static uint32_t tag(uint64_t h) { return static_cast<uint32_t>(h >> 32); }
  struct Slot {
    uint32_t tag;
    int32_t id;  // -1: empty
  };
  const std::vector<std::string>& tokens_;
  std::vector<Slot> slots_;
};

}  // namespace ph
