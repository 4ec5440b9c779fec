// The merge loop of BPE training (io/bpe_trainer.h), over words that are already counted: each
// distinct word is a sequence of token ids with the number of times it occurs. Repeatedly, the
// adjacent pair of tokens with the highest count (occurrences of the pair, overlapping ones
// included, times the word's count, summed over the words) is merged into one token: in every
// word, left to right, each occurrence of the pair becomes the new token.
//
// Ties: among pairs of equal count, the pair whose (left bytes, right bytes) is smallest
// lexicographically merges first. The result is the same for any thread count.
//
// A merge makes a new token with the bytes of its two parts. (Merging left to right from single
// bytes, two different pairs never spell the same string and a merged pair never reappears;
// were it to happen, the existing token would be reused and the pair listed once, so tokens
// stay distinct.) Training stops when max_new_tokens tokens were added, when no pair occurs at
// least min_frequency times (and at least once), or when no pair is left. A pair whose bytes
// together are one of the reserved strings (the special tokens) never merges.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace ph {

// Distinct words with their counts. Word w is symbols[starts[w], starts[w + 1]); symbols are
// ids into the learner's initial tokens. starts has one entry more than counts.
struct BpeWords {
  std::vector<uint32_t> symbols;
  std::vector<uint64_t> starts{0};
  std::vector<uint64_t> counts;

  size_t size() const { return counts.size(); }
  void add(const uint32_t* word, size_t n, uint64_t count) {
    symbols.insert(symbols.end(), word, word + n);
    starts.push_back(symbols.size());
    counts.push_back(count);
  }
};

struct BpeMergeOptions {
  int max_new_tokens = 0;
  uint64_t min_frequency = 2;
  int threads = 1;
  std::vector<std::string> reserved;
  // Called about once a second and once at the end: tokens added, max_new_tokens, seconds.
  std::function<void(int added, int target, double seconds)> progress;
};

struct LearnedMerge {
  int32_t left = 0, right = 0, result = 0;  // token ids
};

struct BpeLearned {
  std::vector<std::string> tokens;   // bytes of every token by id: the initial ones, then new ones
  std::vector<LearnedMerge> merges;  // in merge order, each pair once
};

// Learns merges over `words` (consumed). `initial_tokens` are the bytes of the tokens the
// symbols name (distinct, non-empty); new tokens get the ids that follow. Every word's count
// must be positive.
BpeLearned learn_bpe_merges(BpeWords words, std::vector<std::string> initial_tokens,
                            const BpeMergeOptions& options);

}  // namespace ph
