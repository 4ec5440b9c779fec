// The byte-level tokenizer: token id = byte value, vocabulary 256. Any text round-trips.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ph {

inline constexpr int kByteVocabSize = 256;

// One token per byte (0..255).
std::vector<int32_t> encode_bytes(std::string_view text);

// ids[0..n) back to bytes; an id outside [0, 256) (a padded vocabulary's unused rows)
// renders as "<id>".
std::string decode_bytes(const int32_t* ids, size_t n);

}  // namespace ph
