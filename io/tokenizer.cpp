#include "io/tokenizer.h"

namespace ph {

std::vector<int32_t> encode_bytes(std::string_view text) {
  std::vector<int32_t> ids(text.size());
  for (size_t i = 0; i < text.size(); ++i) ids[i] = static_cast<unsigned char>(text[i]);
  return ids;
}

std::string decode_bytes(const int32_t* ids, size_t n) {
  std::string text;
  text.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] >= 0 && ids[i] < kByteVocabSize) {
      text.push_back(static_cast<char>(static_cast<unsigned char>(ids[i])));
    } else {
      text.push_back('<');
      text += std::to_string(ids[i]);
      text.push_back('>');
    }
  }
  return text;
}

}  // namespace ph
