#include "io/bpe_files.h"

#include <limits>
#include <string>
#include <unordered_map>

#include "io/byte_level.h"
#include "io/config.h"
#include "io/flat_json.h"

namespace ph {

namespace {

std::string quoted(std::string_view s) {
  std::string q(1, '"');
  q += printable(s);
  q += '"';
  return q;
}

// Calls fn(line, number) for each line of `text` (without its '\n'); a last line that is
// empty (the text ends with '\n') is not a line.
template <class Fn>
void for_each_line(std::string_view text, Fn&& fn) {
  size_t begin = 0, number = 1;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    fn(text.substr(begin, end - begin), number++);
    begin = end + 1;
  }
}

// A non-negative decimal integer below 2^31, or -1.
int64_t parse_id(std::string_view s) {
  if (s.empty() || s.size() > 10 || (s.size() > 1 && s[0] == '0')) return -1;
  int64_t v = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return -1;
    v = v * 10 + (c - '0');
  }
  return v <= std::numeric_limits<int32_t>::max() ? v : -1;
}

// Strict base64 (standard alphabet, '=' padding to a multiple of 4); false if malformed.
bool base64_decode(std::string_view s, std::string* out) {
  static constexpr auto kValues = [] {
    std::array<int8_t, 256> v{};
    for (auto& x : v) x = -1;
    const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (int i = 0; i < 64; ++i) v[static_cast<uint8_t>(alphabet[i])] = static_cast<int8_t>(i);
    return v;
  }();
  if (s.empty() || s.size() % 4 != 0) return false;
  size_t pad = 0;
  if (s.back() == '=') pad = s[s.size() - 2] == '=' ? 2 : 1;
  out->clear();
  for (size_t i = 0; i < s.size(); i += 4) {
    uint32_t group = 0;
    const bool last = i + 4 == s.size();
    for (size_t k = 0; k < 4; ++k) {
      if (last && k >= 4 - pad) {
        group <<= 6;
        continue;
      }
      const int8_t v = kValues[static_cast<uint8_t>(s[i + k])];
      if (v < 0) return false;
      group = group << 6 | static_cast<uint32_t>(v);
    }
    const size_t bytes = last ? 3 - pad : 3;
    for (size_t k = 0; k < bytes; ++k) out->push_back(static_cast<char>(group >> (16 - 8 * k)));
  }
  return true;
}

// Checks that ids [0, tokens.size()) all have a token and fills byte_ids from `byte_token`.
void check_dense(const std::vector<bool>& present, const std::string& where) {
  for (size_t id = 0; id < present.size(); ++id) {
    if (!present[id]) {
      throw InputError(where + ": id " + std::to_string(id) + " has no token (ids must be 0, 1, " +
                       "2, ... up to the largest)");
    }
  }
}

}  // namespace

BpeVocab parse_vocab_merges(std::string_view vocab_json, std::string_view merges_txt,
                            const std::string& origin) {
  const std::string vocab_where = "tokenizer '" + origin + "/vocab.json'";
  const std::string merges_where = "tokenizer '" + origin + "/merges.txt'";
  struct Entry {
    int32_t id;
    size_t line;
  };
  std::unordered_map<std::string, Entry> ids;
  std::unordered_map<int32_t, const std::string*> by_id;
  BpeVocab v;
  read_flat_json_object(
      vocab_json, vocab_where, [&](std::string&& key, std::string_view number, size_t line) {
        const std::string at = vocab_where + " line " + std::to_string(line);
        const int64_t id = parse_id(number);
        if (id < 0) {
          throw InputError(at + ": id of token " + quoted(key) +
                           " must be an integer in [0, 2^31)");
        }
        const auto [it, fresh] = ids.emplace(std::move(key), Entry{static_cast<int32_t>(id), line});
        if (!fresh) {
          throw InputError(at + ": token " + quoted(it->first) + " appears twice (first on line " +
                           std::to_string(it->second.line) + ")");
        }
        const auto [other, unique] = by_id.emplace(static_cast<int32_t>(id), &it->first);
        if (!unique) {
          throw InputError(at + ": id " + std::to_string(id) + " of token " + quoted(it->first) +
                           " is already token " + quoted(*other->second));
        }
      });
  size_t size = 0;
  for (const auto& [key, e] : ids) size = std::max(size, static_cast<size_t>(e.id) + 1);
  v.tokens.resize(size);
  std::vector<bool> present(size, false);
  for (const auto& [key, e] : ids) {
    present[static_cast<size_t>(e.id)] = true;
    std::string bytes;
    // A key outside the byte-level alphabet (an added special token) stands for its own text.
    if (!byte_level_decode(key, &bytes)) bytes = key;
    v.tokens[static_cast<size_t>(e.id)] = std::move(bytes);
  }
  check_dense(present, vocab_where);
  for (int b = 0; b < 256; ++b) {
    const std::string symbol = byte_level_encode(std::string(1, static_cast<char>(b)));
    const auto it = ids.find(symbol);
    if (it == ids.end()) {
      throw InputError(vocab_where + ": byte " + std::to_string(b) + " (its symbol " +
                       quoted(symbol) + ") has no token");
    }
    v.byte_ids[static_cast<size_t>(b)] = it->second.id;
  }

  std::unordered_map<uint64_t, size_t> seen;  // (left, right) -> line
  bool first = true;
  for_each_line(merges_txt, [&](std::string_view line, size_t number) {
    const bool header = first && line.starts_with("#version");
    first = false;
    if (header) return;
    const std::string at = merges_where + " line " + std::to_string(number);
    const size_t space = line.find(' ');
    if (space == 0 || space == std::string_view::npos || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string_view::npos) {
      throw InputError(at + ": expected two tokens separated by one space, got " + quoted(line));
    }
    const std::string a(line.substr(0, space)), b(line.substr(space + 1));
    const auto ia = ids.find(a);
    if (ia == ids.end()) throw InputError(at + ": " + quoted(a) + " is not in vocab.json");
    const auto ib = ids.find(b);
    if (ib == ids.end()) throw InputError(at + ": " + quoted(b) + " is not in vocab.json");
    const auto iab = ids.find(a + b);
    if (iab == ids.end()) {
      throw InputError(at + ": the merge " + quoted(line) + " makes " + quoted(a + b) +
                       ", which is not in vocab.json");
    }
    const uint64_t pair =
        static_cast<uint64_t>(ia->second.id) << 32 | static_cast<uint32_t>(ib->second.id);
    const auto [it, fresh] = seen.emplace(pair, number);
    if (!fresh) {
      throw InputError(at + ": merge " + quoted(line) + " appears twice (first on line " +
                       std::to_string(it->second) + ")");
    }
    v.merges.push_back(BpeMerge{ia->second.id, ib->second.id, iab->second.id,
                                static_cast<uint32_t>(v.merges.size())});
  });
  return v;
}

BpeVocab parse_tiktoken_ranks(std::string_view text, const std::string& origin) {
  const std::string where = "tokenizer '" + origin + "'";
  BpeVocab v;
  std::unordered_map<std::string, size_t> lines;  // token bytes -> line
  std::string bytes;
  for_each_line(text, [&](std::string_view line, size_t number) {
    const std::string at = where + " line " + std::to_string(number);
    const size_t space = line.find(' ');
    if (space == std::string_view::npos || !base64_decode(line.substr(0, space), &bytes)) {
      throw InputError(at + ": expected \"base64 rank\", got " + quoted(line));
    }
    const int64_t rank = parse_id(line.substr(space + 1));
    if (rank < 0) throw InputError(at + ": expected \"base64 rank\", got " + quoted(line));
    if (static_cast<size_t>(rank) != v.tokens.size()) {
      throw InputError(at + ": rank " + std::to_string(rank) + " is not the line's index " +
                       std::to_string(v.tokens.size()) + " (ranks must be 0, 1, 2, ...)");
    }
    const auto [it, fresh] = lines.emplace(bytes, number);
    if (!fresh) {
      throw InputError(at + ": token " + quoted(line.substr(0, space)) + " (bytes " +
                       quoted(bytes) + ") appears twice (first on line " +
                       std::to_string(it->second) + ")");
    }
    v.tokens.push_back(bytes);
  });
  for (int b = 0; b < 256; ++b) {
    const auto it = lines.find(std::string(1, static_cast<char>(b)));
    if (it == lines.end()) throw InputError(where + ": byte " + std::to_string(b) + " has no rank");
    v.byte_ids[static_cast<size_t>(b)] = static_cast<int32_t>(it->second - 1);
  }
  // Every split of a token into two tokens is a merge of that token's rank.
  for (size_t id = 0; id < v.tokens.size(); ++id) {
    const std::string& t = v.tokens[id];
    for (size_t k = 1; k < t.size(); ++k) {
      const auto l = lines.find(t.substr(0, k));
      if (l == lines.end()) continue;
      const auto r = lines.find(t.substr(k));
      if (r == lines.end()) continue;
      v.merges.push_back(BpeMerge{static_cast<int32_t>(l->second - 1),
                                  static_cast<int32_t>(r->second - 1), static_cast<int32_t>(id),
                                  static_cast<uint32_t>(id)});
    }
  }
  v.whole_piece_tokens = static_cast<int32_t>(v.tokens.size());
  v.tokens.emplace_back("<|endoftext|>");
  return v;
}

}  // namespace ph
