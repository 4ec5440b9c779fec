// A bounded cache of the tokens of short pieces, for one thread: direct-mapped (a piece's hash
// picks its one slot; a new piece replaces the old), so its memory is fixed and a lookup is one
// compare. Text repeats its words, so most pieces are found here instead of merged again.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <vector>

namespace ph {

// A hash of a short byte string (mixing 8-byte words).
inline uint64_t piece_hash(std::string_view s) {
  constexpr uint64_t kMul = 0x9E3779B97F4A7C15ull;
  uint64_t h = s.size() * kMul;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  if (i < s.size()) {
    uint64_t w = 0;
    std::memcpy(&w, s.data() + i, s.size() - i);
    h = (h ^ w) * kMul;
    h ^= h >> 29;
  }
  return h ^ (h >> 32);
}

class BpePieceCache {
 public:
  static constexpr size_t kMaxBytes = 22;  // longer pieces are not cached
  static constexpr size_t kMaxTokens = 8;  // nor pieces of more tokens

  explicit BpePieceCache(int slots_log2) : slots_(size_t{1} << slots_log2) {}

  // Appends the tokens of `piece` (hash h = piece_hash(piece)) to `out` if cached.
  bool find(std::string_view piece, uint64_t h, std::vector<int32_t>& out) const {
    const Slot& s = slots_[h & (slots_.size() - 1)];
    if (s.hash != h || s.bytes != piece.size() || std::memcmp(s.key, piece.data(), piece.size())) {
      return false;
    }
    out.insert(out.end(), s.ids, s.ids + s.tokens);
    return true;
  }

  // Starts fetching the slot of hash h into the processor's cache.
  void prefetch(uint64_t h) const { __builtin_prefetch(&slots_[h & (slots_.size() - 1)]); }

  void insert(std::string_view piece, uint64_t h, const int32_t* ids, size_t n) {
    if (piece.size() > kMaxBytes || n > kMaxTokens) return;
    Slot& s = slots_[h & (slots_.size() - 1)];
    s.hash = h;
    s.bytes = static_cast<uint8_t>(piece.size());
    s.tokens = static_cast<uint8_t>(n);
    std::memcpy(s.key, piece.data(), piece.size());
    std::memcpy(s.ids, ids, n * sizeof(int32_t));
  }

  void clear() { std::fill(slots_.begin(), slots_.end(), Slot{}); }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint8_t bytes = 0xFF;  // no piece is this long: an empty slot never matches
    uint8_t tokens = 0;
    char key[kMaxBytes] = {};
    int32_t ids[kMaxTokens] = {};
  };
  static_assert(sizeof(Slot) == 64);
  std::vector<Slot> slots_;
};

}  // namespace ph
