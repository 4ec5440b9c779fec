// A deliberately plain BPE trainer for the tests of io/bpe_merge_learner.h and io/bpe_trainer.h:
// every step recounts every adjacent pair of every word from scratch, picks the highest count
// (ties: smallest (left bytes, right bytes)) and rewrites every word. Same rules as the
// contract: a merge whose bytes are already a token reuses it, a pair that merges again is
// listed once, a pair that would make a reserved string never merges.
#pragma once
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ph::testing {

struct NaiveBpe {
  std::vector<std::string> tokens;                          // bytes by id
  std::vector<std::pair<std::string, std::string>> merges;  // (left bytes, right bytes)
};

// words: (bytes, count); every byte of every word must be one of `initial` (single bytes).
inline NaiveBpe naive_bpe(const std::vector<std::pair<std::string, uint64_t>>& words,
                          const std::vector<std::string>& initial, int max_new_tokens,
                          uint64_t min_frequency, const std::set<std::string>& reserved = {}) {
  NaiveBpe r;
  r.tokens = initial;
  std::map<std::string, int> id;
  for (size_t i = 0; i < initial.size(); ++i) id[initial[i]] = static_cast<int>(i);
  std::vector<std::vector<int>> w;
  std::vector<uint64_t> counts;
  for (const auto& [bytes, count] : words) {
    std::vector<int> s;
    for (const char c : bytes) s.push_back(id.at(std::string(1, c)));
    w.push_back(s);
    counts.push_back(count);
  }
  std::set<std::pair<int, int>> merged, banned;
  int added = 0;
  while (added < max_new_tokens) {
    std::unordered_map<uint64_t, uint64_t> pairs;
    for (size_t i = 0; i < w.size(); ++i) {
      for (size_t j = 0; j + 1 < w[i].size(); ++j) {
        pairs[(uint64_t(w[i][j]) << 32) | uint32_t(w[i][j + 1])] += counts[i];
      }
    }
    bool found = false;
    int a = 0, b = 0;
    uint64_t best = 0;
    for (const auto& [key, count] : pairs) {
      const int x = int(key >> 32), y = int(key & 0xFFFFFFFFu);
      if (count < std::max<uint64_t>(min_frequency, 1) || banned.count({x, y})) continue;
      const bool better = !found || count > best ||
                          (count == best && std::make_pair(r.tokens[x], r.tokens[y]) <
                                                std::make_pair(r.tokens[a], r.tokens[b]));
      if (better) found = true, best = count, a = x, b = y;
    }
    if (!found) break;
    const std::string bytes = r.tokens[a] + r.tokens[b];
    if (reserved.count(bytes)) {
      banned.insert({a, b});
      continue;
    }
    int m;
    if (id.count(bytes)) {
      m = id[bytes];
    } else {
      m = static_cast<int>(r.tokens.size());
      r.tokens.push_back(bytes);
      id[bytes] = m;
      ++added;
    }
    if (merged.insert({a, b}).second) r.merges.emplace_back(r.tokens[a], r.tokens[b]);
    for (std::vector<int>& s : w) {
      std::vector<int> out;
      for (size_t j = 0; j < s.size();) {
        if (j + 1 < s.size() && s[j] == a && s[j + 1] == b) {
          out.push_back(m);
          j += 2;
        } else {
          out.push_back(s[j++]);
        }
      }
      s = out;
    }
  }
  return r;
}

}  // namespace ph::testing
