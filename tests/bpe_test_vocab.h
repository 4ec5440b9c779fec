// Small byte-level BPE vocabularies for the tests, written in both file formats, and naive
// reference encoders (repeatedly merge the lowest-ranked adjacent pair, found by a full scan).
#pragma once
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "io/byte_level.h"

namespace ph::testing {

struct TestVocab {
  std::vector<std::string> tokens;          // bytes by id; ids 0..255 are the bytes
  std::vector<std::pair<int, int>> merges;  // in rank order; merge i makes token 256 + i
};

// 256 bytes, then `n` merges of random pairs of tokens made of `alphabet`'s bytes.
inline TestVocab random_vocab(std::mt19937& rng, int n, const std::string& alphabet) {
  TestVocab v;
  for (int b = 0; b < 256; ++b) v.tokens.emplace_back(1, static_cast<char>(b));
  std::vector<int> pool;
  for (const char c : alphabet) pool.push_back(static_cast<uint8_t>(c));
  std::set<std::string> seen(v.tokens.begin(), v.tokens.end());
  while (static_cast<int>(v.merges.size()) < n) {
    std::uniform_int_distribution<size_t> pick(0, pool.size() - 1);
    const int a = pool[pick(rng)], b = pool[pick(rng)];
    const std::string t = v.tokens[static_cast<size_t>(a)] + v.tokens[static_cast<size_t>(b)];
    if (t.size() > 10 || !seen.insert(t).second) continue;
    v.merges.emplace_back(a, b);
    pool.push_back(static_cast<int>(v.tokens.size()));
    v.tokens.push_back(t);
  }
  return v;
}

inline std::string base64(const std::string& s) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < s.size(); i += 3) {
    uint32_t g = static_cast<uint8_t>(s[i]) << 16;
    if (i + 1 < s.size()) g |= static_cast<uint8_t>(s[i + 1]) << 8;
    if (i + 2 < s.size()) g |= static_cast<uint8_t>(s[i + 2]);
    out += k[g >> 18];
    out += k[(g >> 12) & 63];
    out += i + 1 < s.size() ? k[(g >> 6) & 63] : '=';
    out += i + 2 < s.size() ? k[g & 63] : '=';
  }
  return out;
}

// "base64 rank" lines, rank = id.
inline std::string tiktoken_text(const std::vector<std::string>& tokens) {
  std::string out;
  for (size_t id = 0; id < tokens.size(); ++id)
    out += base64(tokens[id]) + " " + std::to_string(id) + "\n";
  return out;
}

inline std::string json_escaped(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

// One token per line: the token of id k is on line k + 2.
inline std::string vocab_json_text(const std::vector<std::string>& keys) {
  std::string out = "{\n";
  for (size_t id = 0; id < keys.size(); ++id) {
    out += "  \"" + json_escaped(keys[id]) + "\": " + std::to_string(id);
    out += id + 1 < keys.size() ? ",\n" : "\n";
  }
  return out + "}\n";
}

inline std::vector<std::string> byte_level_keys(const std::vector<std::string>& tokens) {
  std::vector<std::string> keys;
  for (const auto& t : tokens) keys.push_back(byte_level_encode(t));
  return keys;
}

inline std::string merges_text(const TestVocab& v) {
  std::string out = "#version: 0.2\n";
  for (const auto& [a, b] : v.merges) {
    out += byte_level_encode(v.tokens[static_cast<size_t>(a)]) + " " +
           byte_level_encode(v.tokens[static_cast<size_t>(b)]) + "\n";
  }
  return out;
}

// tiktoken's BPE of one piece, naively: a piece that is a token is that token; otherwise the
// adjacent pair whose concatenation is the lowest-ranked token merges, the leftmost first.
inline std::vector<int> naive_tiktoken_bpe(const std::map<std::string, int>& ranks,
                                           const std::string& piece) {
  if (const auto it = ranks.find(piece); it != ranks.end()) return {it->second};
  std::vector<std::string> parts;
  for (const char c : piece) parts.emplace_back(1, c);
  for (;;) {
    int best = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto it = ranks.find(parts[i] + parts[i + 1]);
      if (it != ranks.end() && (best < 0 || it->second < best)) {
        best = it->second;
        at = i;
      }
    }
    if (best < 0) break;
    parts[at] += parts[at + 1];
    parts.erase(parts.begin() + static_cast<long>(at) + 1);
  }
  std::vector<int> ids;
  for (const auto& p : parts) ids.push_back(ranks.at(p));
  return ids;
}

inline std::map<std::pair<int, int>, int> merge_ranks(const TestVocab& v) {
  std::map<std::pair<int, int>, int> rank;
  for (size_t r = 0; r < v.merges.size(); ++r) rank.emplace(v.merges[r], static_cast<int>(r));
  return rank;
}

// GPT-2's BPE of one piece with a merge list, naively: the listed pair of lowest rank merges,
// the leftmost first; a pair that is not listed never merges.
// `rank` maps each merge to its index in the list (merge_ranks).
inline std::vector<int> naive_merges_bpe(const std::map<std::pair<int, int>, int>& rank,
                                         const std::string& piece) {
  std::vector<int> parts;
  for (const char c : piece) parts.push_back(static_cast<uint8_t>(c));
  for (;;) {
    int best = -1;
    size_t at = 0;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      const auto it = rank.find({parts[i], parts[i + 1]});
      if (it != rank.end() && (best < 0 || it->second < best)) {
        best = it->second;
        at = i;
      }
    }
    if (best < 0) break;
    parts[at] = 256 + best;
    parts.erase(parts.begin() + static_cast<long>(at) + 1);
  }
  return parts;
}

}  // namespace ph::testing
