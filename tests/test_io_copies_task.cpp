// BERT's copies task (io/copies_task.h): the line format, the words of the registered stream
// (rng::kCopiesA) as a pure function of the seed, the held-out split (no word in both), and the
// shards it writes.
#include <gtest/gtest.h>

#include <array>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/copies_task.h"
#include "io/shard.h"
#include "kernels/common/rng_streams.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::TempDir;

TEST(CopiesTask, LineIsOneWordThreeTimes) {
  EXPECT_EQ(CopiesTask::kLineLength, 18);
  EXPECT_EQ(CopiesTask::kWords, 11881376u);
  EXPECT_EQ(CopiesTask::word(0), "aaaaa");
  EXPECT_EQ(CopiesTask::word(1), "aaaab");
  EXPECT_EQ(CopiesTask::word(26), "aaaba");
  EXPECT_EQ(CopiesTask::word(CopiesTask::kWords - 1), "zzzzz");
  // q w e r t = 16 22 4 17 19 in base 26.
  const uint32_t qwert = (((16u * 26 + 22) * 26 + 4) * 26 + 17) * 26 + 19;
  EXPECT_EQ(CopiesTask::line(qwert), "qwert qwert qwert\n");
  EXPECT_THROW(CopiesTask::word(CopiesTask::kWords), std::out_of_range);
}

TEST(CopiesTask, AboutATenthOfTheWordsAreHeldOut) {
  int val = 0;
  const int n = 200000;
  for (uint32_t w = 0; w < static_cast<uint32_t>(n); ++w) val += CopiesTask::is_val(w);
  EXPECT_NEAR(static_cast<double>(val) / n, 0.1, 0.005);
}

TEST(CopiesTask, WordsComeFromTheirStreamAndSplitsNeverShareAWord) {
  EXPECT_EQ(rng::kCopiesA, hash_name("copies.words"));
  std::vector<uint32_t> train, val;
  CopiesTask::draw(7, 3000, 400, train, val);
  ASSERT_EQ(train.size(), 3000u);
  ASSERT_EQ(val.size(), 400u);
  for (const uint32_t w : train) EXPECT_FALSE(CopiesTask::is_val(w));
  for (const uint32_t w : val) EXPECT_TRUE(CopiesTask::is_val(w));
  // The words in order of the stream: Philox word k of (seed, kCopiesA, 0) below the largest
  // multiple of 26^5 under 2^32, mod 26^5, routed by is_val.
  std::vector<uint32_t> all;
  const uint64_t limit = (uint64_t{1} << 32) / CopiesTask::kWords * CopiesTask::kWords;
  for (uint64_t k = 0; all.size() < 200; ++k) {
    const uint32_t x = philox_bits(7, rng::kCopiesA, 0, k);
    if (x < limit) all.push_back(x % CopiesTask::kWords);
  }
  size_t t = 0, v = 0;
  for (const uint32_t w : all) {
    if (CopiesTask::is_val(w))
      EXPECT_EQ(val[v++], w);
    else
      EXPECT_EQ(train[t++], w);
  }
  // A pure function of the seed: the same again, other words for another seed.
  std::vector<uint32_t> train2, val2;
  CopiesTask::draw(7, 3000, 400, train2, val2);
  EXPECT_EQ(train2, train);
  EXPECT_EQ(val2, val);
  CopiesTask::draw(8, 3000, 400, train2, val2);
  EXPECT_NE(train2, train);
  EXPECT_NE(val2, val);
  // The letters are uniform: each about 1/26 of the training words' letters.
  std::array<int, 26> letters{};
  for (const uint32_t w : train)
    for (const char c : CopiesTask::word(w)) ++letters[static_cast<size_t>(c - 'a')];
  for (const int n : letters) EXPECT_NEAR(n / (5.0 * 3000), 1.0 / 26, 0.01);
}

std::string shard_text(const std::string& path) {
  const Shard shard = Shard::open(path, 256);
  std::string s;
  for (size_t i = 0; i < shard.size(); ++i) s.push_back(static_cast<char>(shard.tokens()[i]));
  return s;
}

TEST(CopiesTask, GenerateWritesTheLinesOfBothSplits) {
  TempDir dir;
  const std::string sub = dir / "data";
  CopiesTask::generate(sub, 11, 500, 60);
  std::vector<uint32_t> train, val;
  CopiesTask::draw(11, 500, 60, train, val);
  std::string want_train, want_val;
  for (const uint32_t w : train) want_train += CopiesTask::line(w);
  for (const uint32_t w : val) want_val += CopiesTask::line(w);
  EXPECT_EQ(shard_text(sub + "/train.bin"), want_train);
  EXPECT_EQ(shard_text(sub + "/val.bin"), want_val);
  EXPECT_EQ(want_val.size(), 60u * 18);
  // Read back from the files, no word is in both.
  std::set<std::string> train_words;
  const std::string text = shard_text(sub + "/train.bin");
  for (size_t at = 0; at < text.size(); at += 18) train_words.insert(text.substr(at, 5));
  for (const uint32_t w : val) EXPECT_FALSE(train_words.contains(CopiesTask::word(w)));

  // The same content leaves the files alone; another seed replaces them.
  const auto stamp = std::filesystem::last_write_time(sub + "/train.bin");
  CopiesTask::generate(sub, 11, 500, 60);
  EXPECT_EQ(std::filesystem::last_write_time(sub + "/train.bin"), stamp);
  CopiesTask::generate(sub, 12, 500, 60);
  EXPECT_NE(shard_text(sub + "/train.bin"), want_train);

  EXPECT_THROW(CopiesTask::generate(sub, 1, 0, 10), InputError);
  EXPECT_THROW(CopiesTask::generate(sub, 1, 10, -1), InputError);
  EXPECT_THROW(CopiesTask::generate(sub, 1, 200000000, 10), InputError);  // 3.6e9 tokens
}

}  // namespace
}  // namespace ph
