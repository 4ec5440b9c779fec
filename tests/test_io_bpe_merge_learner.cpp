// The BPE merge loop (io/bpe_merge_learner.h) against the plain trainer of tests/naive_bpe.h on
// random words: the same merges and tokens for 1, 2 and 3 threads, with ties broken by bytes
// (not ids), overlapping pairs, min_frequency and reserved strings.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>

#include "io/bpe_merge_learner.h"
#include "naive_bpe.h"

namespace ph {
namespace {

using Words = std::vector<std::pair<std::string, uint64_t>>;

// Random words over the first `letters` letters of "abcdefgh", lengths 1..max_len.
Words random_words(std::mt19937& rng, size_t n, int letters, int max_len, int max_count) {
  Words words;
  std::uniform_int_distribution<int> letter(0, letters - 1), len(1, max_len), count(1, max_count);
  for (size_t i = 0; i < n; ++i) {
    std::string w;
    for (int j = len(rng); j > 0; --j) w.push_back(static_cast<char>('a' + letter(rng)));
    words.emplace_back(w, static_cast<uint64_t>(count(rng)));
  }
  return words;
}

// The 256 single bytes in a shuffled id order, so that ids and bytes order differently.
std::vector<std::string> shuffled_bytes(std::mt19937& rng) {
  std::vector<int> order(256);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<std::string> tokens;
  for (const int b : order) tokens.emplace_back(1, static_cast<char>(b));
  return tokens;
}

BpeWords to_words(const Words& words, const std::vector<std::string>& initial) {
  uint32_t id_of[256];
  for (uint32_t i = 0; i < 256; ++i) id_of[static_cast<uint8_t>(initial[i][0])] = i;
  BpeWords out;
  for (const auto& [bytes, count] : words) {
    std::vector<uint32_t> s;
    for (const char c : bytes) s.push_back(id_of[static_cast<uint8_t>(c)]);
    out.add(s.data(), s.size(), count);
  }
  return out;
}

struct Outcome {
  std::vector<std::string> tokens;
  std::vector<std::pair<std::string, std::string>> merges;
  bool operator==(const Outcome&) const = default;
};

Outcome learn(const Words& words, const std::vector<std::string>& initial, int max_new,
              uint64_t min_frequency, int threads, const std::vector<std::string>& reserved = {}) {
  BpeMergeOptions o;
  o.max_new_tokens = max_new;
  o.min_frequency = min_frequency;
  o.threads = threads;
  o.reserved = reserved;
  const BpeLearned l = learn_bpe_merges(to_words(words, initial), initial, o);
  Outcome r{l.tokens, {}};
  for (const LearnedMerge& m : l.merges) {
    r.merges.emplace_back(l.tokens.at(static_cast<size_t>(m.left)),
                          l.tokens.at(static_cast<size_t>(m.right)));
    EXPECT_EQ(l.tokens.at(static_cast<size_t>(m.result)),
              r.merges.back().first + r.merges.back().second);
  }
  return r;
}

Outcome naive(const Words& words, const std::vector<std::string>& initial, int max_new,
              uint64_t min_frequency, const std::vector<std::string>& reserved = {}) {
  const testing::NaiveBpe n =
      testing::naive_bpe(words, initial, max_new, min_frequency,
                         std::set<std::string>(reserved.begin(), reserved.end()));
  return Outcome{n.tokens, n.merges};
}

TEST(BpeMergeLearner, MatchesThePlainTrainerOnRandomWords) {
  std::mt19937 rng(1234);
  for (int round = 0; round < 40; ++round) {
    const int letters = 2 + round % 4;
    const Words words = random_words(rng, 20 + static_cast<size_t>(round) * 7, letters, 12, 9);
    const std::vector<std::string> initial = shuffled_bytes(rng);
    const int max_new = 5 + round * 3;
    const uint64_t min_frequency = static_cast<uint64_t>(round % 3);
    const Outcome want = naive(words, initial, max_new, min_frequency);
    ASSERT_GT(want.merges.size(), 0u);
    const Outcome got = learn(words, initial, max_new, min_frequency, 1);
    ASSERT_EQ(got.merges, want.merges) << "round " << round;
    ASSERT_EQ(got.tokens, want.tokens) << "round " << round;
    EXPECT_EQ(got.merges.size(), got.tokens.size() - 256) << "one new token per merge";
    const std::set<std::string> distinct(got.tokens.begin(), got.tokens.end());
    EXPECT_EQ(distinct.size(), got.tokens.size());
  }
}

TEST(BpeMergeLearner, SameResultForAnyThreadCountOnLargeMerges) {
  // Enough words that the first merges are split over the threads.
  std::mt19937 rng(99);
  const Words words = random_words(rng, 30000, 3, 10, 5);
  const std::vector<std::string> initial = shuffled_bytes(rng);
  const Outcome want = naive(words, initial, 60, 2);
  ASSERT_EQ(want.tokens.size(), 256u + 60u);
  for (const int threads : {1, 2, 3}) {
    EXPECT_EQ(learn(words, initial, 60, 2, threads), want) << threads << " threads";
  }
}

TEST(BpeMergeLearner, TiesGoToTheSmallestBytesNotTheSmallestIds) {
  // "ba" and "ab" both occur 3 times. With 'b' given a smaller id than 'a', a tie-break by ids
  // would merge (b, a) first; by bytes (a, b) comes first.
  std::vector<std::string> initial;
  initial.emplace_back("b");
  initial.emplace_back("a");
  for (int c = 0; c < 256; ++c) {
    if (c != 'a' && c != 'b') initial.emplace_back(1, static_cast<char>(c));
  }
  const Words words = {{"ab", 3}, {"ba", 3}};
  const Outcome got = learn(words, initial, 1, 1, 1);
  ASSERT_EQ(got.merges.size(), 1u);
  EXPECT_EQ(got.merges[0], std::make_pair(std::string("a"), std::string("b")));
  // The left bytes decide before the right ones: ("a", "zz") before ("az", "a").
  const Outcome two = learn({{"azz", 4}, {"aza", 4}}, initial, 3, 1, 1);
  EXPECT_EQ(two, naive({{"azz", 4}, {"aza", 4}}, initial, 3, 1));
}

TEST(BpeMergeLearner, OverlappingPairsCountEveryPositionAndMergeLeftToRight) {
  std::mt19937 rng(5);
  const std::vector<std::string> initial = shuffled_bytes(rng);
  // "aaaa" holds (a, a) three times: more than "bc" twice.
  const Outcome got = learn({{"aaaa", 1}, {"bc", 2}}, initial, 1, 1, 1);
  ASSERT_EQ(got.merges.size(), 1u);
  EXPECT_EQ(got.merges[0].first + got.merges[0].second, "aa");
  // Merged left to right, "aaa" is "aa a": the next merge is (aa, a) or (aa, aa), per counts.
  const Words words = {{"aaaaa", 3}, {"aaa", 1}};
  EXPECT_EQ(learn(words, initial, 4, 1, 1), naive(words, initial, 4, 1));
}

TEST(BpeMergeLearner, MinFrequencyStopsEarly) {
  std::mt19937 rng(7);
  const std::vector<std::string> initial = shuffled_bytes(rng);
  const Words words = {{"ab", 3}, {"cd", 1}, {"ef", 2}};
  const Outcome got = learn(words, initial, 10, 2, 1);
  ASSERT_EQ(got.merges.size(), 2u);
  EXPECT_EQ(got.merges[0], std::make_pair(std::string("a"), std::string("b")));
  EXPECT_EQ(got.merges[1], std::make_pair(std::string("e"), std::string("f")));
  EXPECT_EQ(got.tokens.size(), 258u);
  EXPECT_EQ(learn(words, initial, 10, 4, 1).merges.size(), 0u);
  EXPECT_EQ(learn(words, initial, 10, 0, 1).merges.size(), 3u);  // 0 acts as 1
}

TEST(BpeMergeLearner, ReservedStringsAreNeverMade) {
  std::mt19937 rng(11);
  const std::vector<std::string> initial = shuffled_bytes(rng);
  const Words words = random_words(rng, 300, 3, 8, 4);
  const std::vector<std::string> reserved = {"ab", "ca", "bbc"};
  const Outcome got = learn(words, initial, 40, 1, 2, reserved);
  EXPECT_EQ(got, naive(words, initial, 40, 1, reserved));
  for (const std::string& r : reserved) {
    EXPECT_EQ(std::count(got.tokens.begin(), got.tokens.end(), r), 0) << r;
  }
  EXPECT_EQ(got.tokens.size(), 256u + 40u);
}

TEST(BpeMergeLearner, ReportsProgressAtTheEnd) {
  std::mt19937 rng(13);
  const std::vector<std::string> initial = shuffled_bytes(rng);
  BpeMergeOptions o;
  o.max_new_tokens = 5;
  int calls = 0, last_done = -1, last_target = -1;
  o.progress = [&](int done, int target, double) {
    ++calls;
    last_done = done;
    last_target = target;
  };
  learn_bpe_merges(to_words({{"abcabc", 5}, {"abd", 2}}, initial), initial, o);
  EXPECT_GE(calls, 1);
  EXPECT_EQ(last_target, 5);
  EXPECT_EQ(last_done, 4);  // ab, abc, abcabc, abd; then no pair is left
}

}  // namespace
}  // namespace ph
