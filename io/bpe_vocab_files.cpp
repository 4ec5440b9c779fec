#include "io/bpe_vocab_files.h"

#include "io/byte_level.h"

namespace ph {

namespace {

// A byte-level token as the inside of a JSON string: the alphabet has no control characters, so
// only the quote and the backslash need escaping.
void append_json_string(const std::string& s, std::string* out) {
  for (const char c : s) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
}

}  // namespace

std::string gpt2_vocab_json(const std::vector<std::string>& tokens) {
  std::string out = "{";
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (id > 0) out.push_back(',');
    out.push_back('"');
    append_json_string(byte_level_encode(tokens[id]), &out);
    out += "\":" + std::to_string(id);
  }
  out += "}";
  return out;
}

std::string gpt2_merges_txt(const std::vector<std::string>& tokens,
                            const std::vector<std::pair<int32_t, int32_t>>& merges) {
  std::string out = "#version: 0.2\n";
  for (const auto& [left, right] : merges) {
    out += byte_level_encode(tokens[static_cast<size_t>(left)]);
    out.push_back(' ');
    out += byte_level_encode(tokens[static_cast<size_t>(right)]);
    out.push_back('\n');
  }
  return out;
}

}  // namespace ph
