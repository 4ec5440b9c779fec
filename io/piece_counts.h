// A multiset of byte strings: each distinct string once, with how many times it was added (the
// pre-tokenized pieces of a corpus for BPE training). The strings live in one buffer and the
// table is open-addressed, so a distinct piece costs about 40 bytes (plus its bytes when
// longer than 8).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ph {

class PieceCounts {
 public:
  PieceCounts();

  // Adds `count` occurrences of `piece`.
  void add(std::string_view piece, uint64_t count = 1);
  // Adds every string of `other` with its count.
  void add_all(const PieceCounts& other);

  // Distinct strings.
  size_t size() const { return entries_.size(); }
  // The count of `piece` (0 when absent).
  uint64_t count(std::string_view piece) const;

  // Calls fn(std::string_view piece, uint64_t count) for each distinct string, in the order
  // they were first added.
  template <class Fn>
  void for_each(Fn&& fn) const {
    for (const Entry& e : entries_) fn(bytes_of(e), e.count);
  }

 private:
  // A string of up to kInline bytes is kept in its entry (zero-padded), a longer one in bytes_.
  static constexpr size_t kInline = 8;
  struct Entry {
    uint64_t bytes;  // the string itself, or its offset in bytes_
    uint32_t length;
    uint32_t hash;
    uint64_t count;
  };
  std::string_view bytes_of(const Entry& e) const {
    if (e.length <= kInline) return {reinterpret_cast<const char*>(&e.bytes), e.length};
    return std::string_view(bytes_).substr(e.bytes, e.length);
  }
  // The slot of `piece` (hash `h`, `packed` its bytes when short): the one that holds it, or
  // the empty one where it belongs.
  size_t find_slot(std::string_view piece, uint32_t h, uint64_t packed) const;
  void grow();

  std::string bytes_;
  std::vector<Entry> entries_;
  std::vector<uint32_t> slots_;  // entry index + 1; 0 is empty
  size_t mask_;
};

}  // namespace ph
