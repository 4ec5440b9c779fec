#include "io/bpe_merge.h"

#include <cstring>
#include <queue>
#include <utility>

namespace ph {

namespace {

// Pieces up to this many bytes merge by scanning for the minimum; longer ones through a heap.
constexpr size_t kShortPiece = 64;

}  // namespace

BpeMerger::BpeMerger(const BpeVocab& vocab) : byte_ids_(vocab.byte_ids) {
  size_t capacity = 16;
  int bits = 4;
  while (capacity < vocab.merges.size() * 2) {
    capacity *= 2;
    ++bits;
  }
  slots_.assign(capacity, Slot{});
  mask_ = capacity - 1;
  shift_ = 64 - bits;
  for (const BpeMerge& m : vocab.merges) {
    const uint64_t key =
        static_cast<uint64_t>(static_cast<uint32_t>(m.left)) << 32 | static_cast<uint32_t>(m.right);
    const uint64_t value = static_cast<uint64_t>(m.rank) << 32 | static_cast<uint32_t>(m.result);
    size_t i = slot_of(key);
    while (slots_[i].key != kNone && slots_[i].key != key) i = (i + 1) & mask_;
    if (slots_[i].key == kNone) ++pairs_;
    slots_[i] = Slot{key, value};
  }
}

void BpeMerger::merge(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.size() <= kShortPiece) {
    merge_short(piece, out);
  } else {
    merge_long(piece, out);
  }
}

void BpeMerger::merge_short(std::string_view piece, std::vector<int32_t>& out) const {
  int32_t sym[kShortPiece];
  uint64_t pair[kShortPiece];  // pair[i]: the merge of sym[i] and sym[i + 1]
  size_t m = piece.size();
  for (size_t i = 0; i < m; ++i) sym[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
  for (size_t i = 0; i + 1 < m; ++i) pair[i] = lookup(sym[i], sym[i + 1]);
  while (m > 1) {
    uint64_t best = kNone;
    size_t at = 0;
    for (size_t i = 0; i + 1 < m; ++i) {
      if (pair[i] < best) {
        best = pair[i];
        at = i;
      }
    }
    if (best == kNone) break;
    sym[at] = static_cast<int32_t>(static_cast<uint32_t>(best));
    --m;
    std::memmove(sym + at + 1, sym + at + 2, (m - at - 1) * sizeof(int32_t));
    if (at + 1 < m) {
      std::memmove(pair + at + 1, pair + at + 2, (m - at - 2) * sizeof(uint64_t));
      pair[at] = lookup(sym[at], sym[at + 1]);
    }
    if (at > 0) pair[at - 1] = lookup(sym[at - 1], sym[at]);
  }
  out.insert(out.end(), sym, sym + m);
}

void BpeMerger::merge_long(std::string_view piece, std::vector<int32_t>& out) const {
  const size_t n = piece.size();
  constexpr uint32_t kEnd = ~uint32_t{0};
  std::vector<int32_t> sym(n);
  std::vector<uint32_t> next(n), prev(n);
  std::vector<uint64_t> pair(n, kNone);  // the current merge of the symbol at i and its next
  for (size_t i = 0; i < n; ++i) {
    sym[i] = byte_ids_[static_cast<uint8_t>(piece[i])];
    next[i] = i + 1 < n ? static_cast<uint32_t>(i + 1) : kEnd;
    prev[i] = i > 0 ? static_cast<uint32_t>(i - 1) : kEnd;
  }
  using Entry = std::pair<uint64_t, uint32_t>;  // (merge, position): lowest rank, then leftmost
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> heap;
  for (size_t i = 0; i + 1 < n; ++i) {
    pair[i] = lookup(sym[i], sym[i + 1]);
    if (pair[i] != kNone) heap.emplace(pair[i], static_cast<uint32_t>(i));
  }
  while (!heap.empty()) {
    const auto [merge, at] = heap.top();
    heap.pop();
    if (pair[at] != merge) continue;  // stale: the symbol or its neighbour changed
    const uint32_t right = next[at];
    sym[at] = static_cast<int32_t>(static_cast<uint32_t>(merge));
    pair[right] = kNone;
    sym[right] = -1;
    next[at] = next[right];
    if (next[at] != kEnd) prev[next[at]] = at;
    pair[at] = next[at] != kEnd ? lookup(sym[at], sym[next[at]]) : kNone;
    if (pair[at] != kNone) heap.emplace(pair[at], at);
    if (prev[at] != kEnd) {
      const uint32_t p = prev[at];
      pair[p] = lookup(sym[p], sym[at]);
      if (pair[p] != kNone) heap.emplace(pair[p], p);
    }
  }
  for (uint32_t i = 0; i != kEnd; i = next[i]) out.push_back(sym[i]);
}

}  // namespace ph
