// BERT's masked-LM masks (io/mlm_masking.h): the count rule, the rate and the 80/10/10 split
// over many samples, never a special position nor a special replacement, slots in order, a pure
// function of (seed, sample, tokens) that follows the documented Philox draws, whole words, and
// the word boundaries of a tokenizer's tokens.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "io/mlm_masking.h"
#include "io/mlm_task.h"
#include "io/tokenizer.h"
#include "kernels/common/rng_streams.h"
#include "test_util.h"

namespace ph {
namespace {

constexpr int32_t kIgnore = -100;
// A vocabulary of 100 ordinary ids 0..99 and the specials 100 [PAD], 101 [CLS], 102 [SEP],
// 103 [MASK].
constexpr int32_t kPad = 100, kCls = 101, kSep = 102, kMask = 103;

std::vector<uint8_t> plain_classes() {
  std::vector<uint8_t> c(104, 0);
  for (int32_t id : {kPad, kCls, kSep, kMask}) c[static_cast<size_t>(id)] = kMlmSpecial;
  return c;
}

MlmMaskingOptions options(int predictions, bool whole_word = false) {
  MlmMaskingOptions o;
  o.predictions = predictions;
  o.whole_word = whole_word;
  o.mask = kMask;
  o.ignore_index = kIgnore;
  return o;
}

// [CLS] then n - 2 ordinary tokens (i mod 100) then [SEP].
std::vector<int32_t> sequence(int n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = i % 100;
  t.front() = kCls;
  t.back() = kSep;
  return t;
}

struct Masked {
  std::vector<int32_t> tokens, positions, targets;
  int num = 0;
};

Masked mask(MlmMasking& m, uint64_t seed, uint64_t sample, std::vector<int32_t> tokens) {
  Masked r;
  r.positions.assign(static_cast<size_t>(m.predictions()), -7);
  r.targets.assign(static_cast<size_t>(m.predictions()), -7);
  r.num = m.apply(seed, sample, tokens.data(), static_cast<int>(tokens.size()), r.positions.data(),
                  r.targets.data());
  r.tokens = std::move(tokens);
  return r;
}

TEST(MlmMasking, StreamsAreNamedAndDistinct) {
  const std::set<uint32_t> a = {rng::kShuffleA,  rng::kAdditionA, rng::kTranslationA,
                                rng::kSamplingA, rng::kMlmMasksA, rng::kMlmSegmentsA};
  EXPECT_EQ(a.size(), 6u);
  EXPECT_GE(rng::kMlmMasksA, rng::kMaxSteps);
  EXPECT_GE(rng::kMlmSegmentsA, rng::kMaxSteps);
}

TEST(MlmMasking, CountIsRoundedRateOfTheCandidatesCappedByP) {
  MlmMasking m(options(20), plain_classes());
  // (sequence length incl. [CLS] and [SEP], predictions): c = n - 2 candidates, floor(0.15c+.5)
  for (const auto& [n, want] : {std::pair{3, 1}, std::pair{5, 1}, std::pair{12, 2},
                                std::pair{22, 3}, std::pair{102, 15}, std::pair{202, 20}}) {
    const Masked r = mask(m, 1, 0, sequence(n));
    EXPECT_EQ(r.num, want) << n;
    for (int i = r.num; i < 20; ++i) {
      EXPECT_EQ(r.positions[static_cast<size_t>(i)], 0);
      EXPECT_EQ(r.targets[static_cast<size_t>(i)], kIgnore);
    }
  }
  const Masked none = mask(m, 1, 0, {kCls, kSep, kPad, kPad});
  EXPECT_EQ(none.num, 0);
  EXPECT_EQ(none.tokens, (std::vector<int32_t>{kCls, kSep, kPad, kPad}));
}

TEST(MlmMasking, RateAndSplitOverManySamples) {
  const int n = 202, P = 40, samples = 3000;
  MlmMasking m(options(P), plain_classes());
  const std::vector<int32_t> original = sequence(n);
  std::vector<int> chosen(static_cast<size_t>(n), 0);
  std::vector<int> drawn(100, 0);
  double masked = 0, random = 0, unchanged = 0, slots = 0;
  for (int s = 0; s < samples; ++s) {
    const Masked r = mask(m, 7, static_cast<uint64_t>(s), original);
    ASSERT_EQ(r.num, 30);  // round(200 * 0.15)
    for (int i = 0; i < r.num; ++i) {
      const int t = r.positions[static_cast<size_t>(i)];
      const int32_t seen = r.tokens[static_cast<size_t>(t)];
      ASSERT_EQ(r.targets[static_cast<size_t>(i)], original[static_cast<size_t>(t)]);
      ++chosen[static_cast<size_t>(t)];
      ++slots;
      if (seen == kMask) {
        ++masked;
      } else if (seen == original[static_cast<size_t>(t)]) {
        ++unchanged;
      } else {
        ASSERT_GE(seen, 0);
        ASSERT_LT(seen, 100) << "a random replacement must be an ordinary token";
        ++random;
        ++drawn[static_cast<size_t>(seen)];
      }
    }
  }
  // 90,000 slots: a share's standard deviation is at most 0.0017; 5 of them.
  const double total = static_cast<double>(slots);
  EXPECT_NEAR(masked / total, 0.8, 0.0085);
  EXPECT_NEAR(random / total, 0.1 * 0.99, 0.0085);  // a draw of the original counts unchanged
  EXPECT_NEAR(unchanged / total, 0.1 + 0.001, 0.0085);
  EXPECT_EQ(chosen.front(), 0);
  EXPECT_EQ(chosen.back(), 0);
  // Every candidate position is chosen at the rate 0.15 (sd 0.0065 over 3000 samples).
  for (int t = 1; t < n - 1; ++t)
    EXPECT_NEAR(chosen[static_cast<size_t>(t)] / static_cast<double>(samples), 0.15, 0.035) << t;
  // Random replacements cover the ordinary ids (about 90 draws of each).
  EXPECT_GT(*std::min_element(drawn.begin(), drawn.end()), 40);
}

TEST(MlmMasking, NeverASpecialPositionAndSlotsInOrder) {
  std::vector<int32_t> t = {kCls, 1, 2, kPad, 3, kSep, 4, 5, kMask, 6, kSep, kPad};
  for (int k = 0; k < 30; ++k) t.insert(t.end() - 2, {7, kPad});
  MlmMasking m(options(64), plain_classes());
  for (uint64_t s = 0; s < 500; ++s) {
    const Masked r = mask(m, 3, s, t);
    ASSERT_GT(r.num, 0);
    for (int i = 0; i < r.num; ++i) {
      const int32_t p = r.positions[static_cast<size_t>(i)];
      EXPECT_FALSE(plain_classes()[static_cast<size_t>(t[static_cast<size_t>(p)])] & kMlmSpecial);
      if (i > 0) {
        EXPECT_LT(r.positions[static_cast<size_t>(i - 1)], p);
      }
    }
    for (size_t i = 0; i < t.size(); ++i)
      if (plain_classes()[static_cast<size_t>(t[i])] & kMlmSpecial) {
        EXPECT_EQ(r.tokens[i], t[i]);
      }
  }
}

TEST(MlmMasking, PureFunctionOfSeedSampleAndTokens) {
  MlmMasking a(options(16), plain_classes()), b(options(16), plain_classes());
  const std::vector<int32_t> t = sequence(100);
  const Masked x = mask(a, 5, 123456789012345ull, t);
  mask(a, 5, 3, t);  // another call in between changes nothing
  const Masked y = mask(b, 5, 123456789012345ull, t);
  EXPECT_EQ(x.tokens, y.tokens);
  EXPECT_EQ(x.positions, y.positions);
  EXPECT_EQ(x.targets, y.targets);
  EXPECT_NE(mask(a, 5, 123456789012346ull, t).positions, x.positions);
  EXPECT_NE(mask(a, 6, 123456789012345ull, t).positions, x.positions);
}

TEST(MlmMasking, FollowsTheDocumentedDraws) {
  const uint64_t seed = 0x123456789ull, s = 42;
  const std::vector<int32_t> t = sequence(50);  // 48 candidates: 7 predictions
  MlmMasking m(options(10), plain_classes());
  const Masked r = mask(m, seed, s, t);
  std::vector<std::pair<uint32_t, int>> keys;
  for (int p = 1; p < 49; ++p)
    keys.emplace_back(philox_bits(seed, rng::kMlmMasksA, static_cast<uint32_t>(p), 4 * s), p);
  std::sort(keys.begin(), keys.end());
  std::vector<int32_t> want;
  for (int i = 0; i < 7; ++i) want.push_back(keys[static_cast<size_t>(i)].second);
  std::sort(want.begin(), want.end());
  ASSERT_EQ(r.num, 7);
  for (int i = 0; i < 7; ++i) {
    const int32_t p = want[static_cast<size_t>(i)];
    EXPECT_EQ(r.positions[static_cast<size_t>(i)], p);
    const uint32_t w1 = philox_bits(seed, rng::kMlmMasksA, static_cast<uint32_t>(p), 4 * s + 1);
    const uint64_t d = (static_cast<uint64_t>(w1) * 10) >> 32;
    if (d < 8) {
      EXPECT_EQ(r.tokens[static_cast<size_t>(p)], kMask);
    } else if (d == 9) {
      EXPECT_EQ(r.tokens[static_cast<size_t>(p)], t[static_cast<size_t>(p)]);
    }
  }
}

TEST(MlmMasking, ScaleBitsIsTheHighWordOfTheProduct) {
  EXPECT_EQ(scale_bits(0, 7), 0u);
  EXPECT_EQ(scale_bits(UINT64_MAX, 7), 6u);
  EXPECT_EQ(scale_bits(1ull << 63, 7), 3u);
  EXPECT_EQ(scale_bits(UINT64_MAX, UINT64_MAX), UINT64_MAX - 1);
  EXPECT_EQ(scale_bits(0x8000000000000001ull, 0x100000000ull), 0x80000000ull);
}

// Byte classes of the byte-level tokenizer plus the four specials 256..259.
std::vector<uint8_t> byte_classes() {
  std::vector<uint8_t> c = mlm_token_classes(Tokenizer(), {});
  c.insert(c.end(), 4, kMlmSpecial);
  return c;
}

TEST(MlmMasking, WordBoundariesOfTokens) {
  const std::vector<uint8_t> c = mlm_token_classes(Tokenizer(), {10});
  EXPECT_EQ(c.size(), 256u);
  EXPECT_EQ(c[' '], kMlmWordStart);
  EXPECT_EQ(c['\t'], kMlmWordStart);
  EXPECT_EQ(c['a'], 0);
  EXPECT_EQ(c['\n'], kMlmSpecial);  // marked special: specials override
  EXPECT_EQ(mlm_token_classes(Tokenizer(), {})['\n'], kMlmWordStart | kMlmLineEnd);

  testing::TempDir dir;
  MlmTask task;
  task.addition.digits = 1;
  task.generate(dir.path.string(), 1, 10, 10, {"[PAD]", "[CLS]", "[SEP]", "[MASK]"});
  const Tokenizer tok = Tokenizer::load(dir / "tokenizer");
  const std::vector<uint8_t> t = mlm_token_classes(tok, {256, 257, 258, 259});
  ASSERT_EQ(t.size(), 260u);
  EXPECT_EQ(t[' '], kMlmWordStart);
  EXPECT_EQ(t['7'], 0);
  EXPECT_EQ(t[258], kMlmSpecial);
}

TEST(MlmMasking, WholeWordsAreMaskedWhole) {
  // "ab cd\nef" repeated: the words "ab", " cd", "\n", "ef", ... between [CLS] and [SEP].
  std::vector<int32_t> t = {256 + 1};
  const std::string text = "ab cd\nefg  hi\n";
  for (int k = 0; k < 20; ++k)
    for (const char ch : text) t.push_back(static_cast<unsigned char>(ch));
  t.push_back(256 + 2);
  // The words by the rule, as a word index per position (-1: special).
  std::vector<int> word(t.size(), -1);
  int w = -1;
  for (size_t i = 1; i + 1 < t.size(); ++i) {
    const char ch = static_cast<char>(t[i]);
    const char before = static_cast<char>(t[i - 1]);
    if (i == 1 || ch == ' ' || ch == '\n' || before == '\n') ++w;
    word[i] = w;
  }
  EXPECT_EQ(word[1], word[2]);  // "ab"
  EXPECT_NE(word[2], word[3]);  // " cd" starts
  EXPECT_EQ(word[3], word[5]);
  EXPECT_NE(word[5], word[6]);  // "\n"
  EXPECT_NE(word[6], word[7]);  // "efg" after the newline
  MlmMaskingOptions o = options(60, true);
  o.mask = 259;
  MlmMasking m(o, byte_classes());
  int partial = 0;
  for (uint64_t s = 0; s < 300; ++s) {
    const Masked r = mask(m, 9, s, t);
    std::vector<int> taken(static_cast<size_t>(w + 1), 0);
    for (int i = 0; i < r.num; ++i)
      ++taken[static_cast<size_t>(word[static_cast<size_t>(r.positions[static_cast<size_t>(i)])])];
    for (size_t i = 1; i + 1 < t.size(); ++i) {
      const int k = taken[static_cast<size_t>(word[i])];
      const int size = static_cast<int>(std::count(word.begin(), word.end(), word[i]));
      if (k != 0 && k != size) ++partial;
    }
    EXPECT_LE(r.num, 42);  // round(280 * 0.15)
    EXPECT_GE(r.num, 38);  // words are at most 4 tokens: the last fits within 3 of num
  }
  EXPECT_EQ(partial, 0);
}

}  // namespace
}  // namespace ph
