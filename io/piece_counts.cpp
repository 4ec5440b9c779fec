#include "io/piece_counts.h"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace ph {

namespace {

inline uint64_t load_bytes(const char* p, size_t n) {
  uint64_t v = 0;
  std::memcpy(&v, p, n);
  return v;
}

inline uint64_t mix(uint64_t h, uint64_t v) {
  h = (h ^ v) * 0x9E3779B97F4A7C15ULL;
  return h ^ (h >> 29);
}

// A short string's bytes as one integer (zero-padded).
inline uint64_t packed_bytes(std::string_view s) {
  return s.size() <= 8 ? load_bytes(s.data(), s.size()) : 0;
}

// A 32-bit hash of a byte string (8 bytes at a time, multiply-fold mixing); `packed` is
// packed_bytes(s).
inline uint32_t hash_piece(std::string_view s, uint64_t packed) {
  const char* p = s.data();
  size_t n = s.size();
  uint64_t h = 0x8BB84B93962EACC9ULL ^ n;
  if (n <= 8) {
    h = mix(h, packed);
  } else {
    while (n > 8) {
      h = mix(h, load_bytes(p, 8));
      p += 8;
      n -= 8;
    }
    h = mix(h, load_bytes(p, n));
  }
  h *= 0xBF58476D1CE4E5B9ULL;
  return static_cast<uint32_t>(h >> 32);
}

}  // namespace

PieceCounts::PieceCounts() : slots_(1u << 12, 0), mask_((1u << 12) - 1) {}

size_t PieceCounts::find_slot(std::string_view piece, uint32_t h, uint64_t packed) const {
  size_t slot = h & mask_;
  const bool short_piece = piece.size() <= kInline;
  while (slots_[slot] != 0) {
    const Entry& e = entries_[slots_[slot] - 1];
    if (e.hash == h && e.length == piece.size() &&
        (short_piece ? e.bytes == packed
                     : std::memcmp(bytes_.data() + e.bytes, piece.data(), piece.size()) == 0)) {
      return slot;
    }
    slot = (slot + 1) & mask_;
  }
  return slot;
}

void PieceCounts::grow() {
  slots_.assign(2 * slots_.size(), 0);
  mask_ = slots_.size() - 1;
  for (size_t i = 0; i < entries_.size(); ++i) {
    size_t slot = entries_[i].hash & mask_;
    while (slots_[slot] != 0) slot = (slot + 1) & mask_;
    slots_[slot] = static_cast<uint32_t>(i + 1);
  }
}

void PieceCounts::add(std::string_view piece, uint64_t count) {
  const uint64_t packed = packed_bytes(piece);
  const uint32_t h = hash_piece(piece, packed);
  size_t slot = find_slot(piece, h, packed);
  if (slots_[slot] != 0) {
    entries_[slots_[slot] - 1].count += count;
    return;
  }
  if (entries_.size() + 1 >= std::numeric_limits<uint32_t>::max() ||
      piece.size() >= std::numeric_limits<uint32_t>::max()) {
    throw std::length_error("PieceCounts: more than 2^32 distinct pieces or a piece of 4 GiB");
  }
  if (2 * (entries_.size() + 1) > slots_.size()) {
    grow();
    slot = find_slot(piece, h, packed);
  }
  if (piece.size() <= kInline) {
    entries_.push_back({packed, static_cast<uint32_t>(piece.size()), h, count});
  } else {
    entries_.push_back({bytes_.size(), static_cast<uint32_t>(piece.size()), h, count});
    bytes_.append(piece);
  }
  slots_[slot] = static_cast<uint32_t>(entries_.size());
}

void PieceCounts::add_all(const PieceCounts& other) {
  other.for_each([this](std::string_view piece, uint64_t count) { add(piece, count); });
}

uint64_t PieceCounts::count(std::string_view piece) const {
  const uint64_t packed = packed_bytes(piece);
  const size_t slot = find_slot(piece, hash_piece(piece, packed), packed);
  return slots_[slot] == 0 ? 0 : entries_[slots_[slot] - 1].count;
}

}  // namespace ph
