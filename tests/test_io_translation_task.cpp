// The encoder-decoder's synthetic task (io/translation_task.h): the English words of numbers, the
// held-out split, the files generate() writes (targets are the words of the sources, the
// tokenizer and its special tokens, the pair files encode the text, the lengths fit S = T = 32),
// determinism, and exact match.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "input_error.h"
#include "io/config.h"
#include "io/pair_file.h"
#include "io/tokenizer.h"
#include "io/translation_task.h"
#include "kernels/common/rng_streams.h"
#include "test_util.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::TempDir;

std::vector<std::string> lines_of(const std::string& path) {
  std::istringstream in(read_file(path));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

using testing::input_error;

TEST(TranslationTask, Words) {
  const std::vector<std::pair<long, std::string>> cases = {
      {0, "zero"},
      {7, "seven"},
      {13, "thirteen"},
      {20, "twenty"},
      {21, "twenty-one"},
      {99, "ninety-nine"},
      {100, "one hundred"},
      {101, "one hundred one"},
      {110, "one hundred ten"},
      {1000, "one thousand"},
      {1005, "one thousand five"},
      {40000, "forty thousand"},
      {427315, "four hundred twenty-seven thousand three hundred fifteen"},
      {2000005, "two million five"},
      {12000300, "twelve million three hundred"},
      {999999999,
       "nine hundred ninety-nine million nine hundred ninety-nine thousand nine hundred "
       "ninety-nine"}};
  for (const auto& [n, words] : cases) EXPECT_EQ(TranslationTask::words(n), words) << n;
  EXPECT_THROW(TranslationTask::words(-1), std::out_of_range);
  EXPECT_THROW(TranslationTask::words(1000000000L), std::out_of_range);
}

TEST(TranslationTask, WordsAreDistinct) {
  std::set<std::string> seen;
  for (long n = 0; n < 200000; ++n) seen.insert(TranslationTask::words(n));
  EXPECT_EQ(seen.size(), 200000u);
}

TEST(TranslationTask, HeldOutSplitIsDisjointAndAboutATenth) {
  int val = 0;
  for (long n = 0; n < 100000; ++n) val += TranslationTask::is_val(n) ? 1 : 0;
  EXPECT_GT(val, 9400);
  EXPECT_LT(val, 10600);
  int single_val = 0;
  for (long n = 0; n < 10; ++n) single_val += TranslationTask::is_val(n) ? 1 : 0;
  EXPECT_GT(single_val, 0);  // both splits exist among 1-digit numbers (draw terminates)
  EXPECT_LT(single_val, 10);

  const TranslationTask task{5};
  std::vector<long> train, val_numbers;
  task.draw(3, 20000, 2000, train, val_numbers);
  ASSERT_EQ(train.size(), 20000u);
  ASSERT_EQ(val_numbers.size(), 2000u);
  const std::set<long> train_set(train.begin(), train.end());
  for (const long n : val_numbers) {
    EXPECT_TRUE(TranslationTask::is_val(n));
    EXPECT_FALSE(train_set.contains(n)) << n;
    EXPECT_LE(n, task.max_number());
  }
  for (const long n : train) EXPECT_FALSE(TranslationTask::is_val(n));
  EXPECT_GT(train_set.size(), 17500u);  // 20,000 draws from ~90,000 numbers: ~17,900 distinct
  EXPECT_GT(*std::max_element(train.begin(), train.end()), 90000);
}

TEST(TranslationTask, DrawIsDeterministic) {
  const TranslationTask task{6};
  std::vector<long> a, b, c, d;
  task.draw(1, 500, 50, a, b);
  task.draw(1, 500, 50, c, d);
  EXPECT_EQ(a, c);
  EXPECT_EQ(b, d);
  task.draw(2, 500, 50, c, d);
  EXPECT_NE(a, c);
  EXPECT_GE(rng::kTranslationA, rng::kMaxSteps);
  EXPECT_NE(rng::kTranslationA, rng::kShuffleA);
  EXPECT_NE(rng::kTranslationA, rng::kAdditionA);
  EXPECT_NE(rng::kTranslationA, rng::kSamplingA);
}

TEST(TranslationTask, GeneratesTextTokenizerAndPairs) {
  TempDir tmp;
  const std::string dir = tmp / "data";
  const TranslationTask task{6};
  task.generate(dir, 11, 3000, 300);
  for (const std::string split : {"train", "val"}) {
    const std::vector<std::string> src = lines_of(dir + "/" + split + ".src");
    const std::vector<std::string> tgt = lines_of(dir + "/" + split + ".tgt");
    ASSERT_EQ(src.size(), split == "train" ? 3000u : 300u);
    ASSERT_EQ(tgt.size(), src.size());
    for (size_t i = 0; i < src.size(); ++i) {
      const long n = std::stol(src[i]);
      EXPECT_EQ(std::to_string(n), src[i]);
      EXPECT_EQ(tgt[i], TranslationTask::words(n));
      EXPECT_EQ(TranslationTask::is_val(n), split == "val");
    }
    // The pair file holds the text, encoded with the task's tokenizer.
    const Tokenizer tok = Tokenizer::load(dir + "/tokenizer");
    ASSERT_LE(tok.size(), TranslationTask::kMaxVocabSize);
    EXPECT_EQ(tok.id_of(TranslationTask::kPad), tok.size() - 3);
    EXPECT_EQ(tok.id_of(TranslationTask::kBos), tok.size() - 2);
    EXPECT_EQ(tok.id_of(TranslationTask::kEos), tok.size() - 1);
    const PairFile f = PairFile::open(dir + "/" + split + ".pairs", TranslationTask::kMaxVocabSize);
    EXPECT_EQ(f.vocab_size(), tok.size());
    ASSERT_EQ(f.size(), src.size());
    uint32_t longest_source = 0, longest_target = 0;
    for (uint64_t i = 0; i < f.size(); ++i) {
      std::vector<int32_t> x(f.source_length(i)), y(f.target_length(i));
      f.read_source(i, x.size(), x.data());
      f.read_target(i, y.size(), y.data());
      EXPECT_EQ(tok.decode(x.data(), x.size()), src[static_cast<size_t>(i)]);
      EXPECT_EQ(tok.decode(y.data(), y.size()), tgt[static_cast<size_t>(i)]);
      // One token per digit: the tokenizer never saw digits together.
      EXPECT_EQ(x.size(), src[static_cast<size_t>(i)].size());
      longest_source = std::max(longest_source, f.source_length(i));
      longest_target = std::max(longest_target, f.target_length(i));
    }
    EXPECT_LE(longest_source + 1, 32u);
    EXPECT_LE(longest_target + 1, 32u) << "longest target: " << longest_target << " tokens";
  }
}

TEST(TranslationTask, GenerateIsDeterministicAndLeavesEqualFilesAlone) {
  TempDir tmp;
  const TranslationTask task{4};
  task.generate(tmp / "a", 5, 400, 40);
  task.generate(tmp / "b", 5, 400, 40);
  task.generate(tmp / "c", 6, 400, 40);
  const std::vector<std::string> files = {"train.src",
                                          "train.tgt",
                                          "val.src",
                                          "val.tgt",
                                          "tokenizer/vocab.json",
                                          "tokenizer/merges.txt",
                                          "train.pairs",
                                          "val.pairs"};
  for (const std::string& f : files) {
    EXPECT_EQ(read_file(tmp / ("a/" + f)), read_file(tmp / ("b/" + f))) << f;
  }
  EXPECT_NE(read_file(tmp / "a/train.src"), read_file(tmp / "c/train.src"));

  // A second generation into the same directory rewrites nothing (same inodes).
  std::vector<ino_t> inodes;
  for (const std::string& f : files) {
    struct stat st {};
    ASSERT_EQ(::stat((tmp / ("a/" + f)).c_str(), &st), 0) << f;
    inodes.push_back(st.st_ino);
  }
  task.generate(tmp / "a", 5, 400, 40);
  for (size_t i = 0; i < files.size(); ++i) {
    struct stat st {};
    ASSERT_EQ(::stat((tmp / ("a/" + files[i])).c_str(), &st), 0);
    EXPECT_EQ(st.st_ino, inodes[i]) << files[i] << " was rewritten";
  }
  // Other counts: the files change.
  task.generate(tmp / "a", 5, 401, 40);
  EXPECT_EQ(lines_of(tmp / "a/train.src").size(), 401u);
  EXPECT_EQ(PairFile::open(tmp / "a/train.pairs", 384).size(), 401u);
}

TEST(TranslationTask, Messages) {
  TempDir tmp;
  EXPECT_EQ(input_error([&] { TranslationTask{0}.generate(tmp / "d", 1, 10, 10); }),
            "translation task: digits must be in [1, 9], got 0");
  EXPECT_EQ(input_error([&] { TranslationTask{10}.generate(tmp / "d", 1, 10, 10); }),
            "translation task: digits must be in [1, 9], got 10");
  EXPECT_EQ(input_error([&] { TranslationTask{3}.generate(tmp / "d", 1, 0, 10); }),
            "translation task: train_pairs must be >= 1, got 0");
  EXPECT_EQ(input_error([&] { TranslationTask{3}.generate(tmp / "d", 1, 10, -1); }),
            "translation task: val_pairs must be >= 1, got -1");
  testing::write_file(tmp / "file", "x");
  const std::string msg =
      input_error([&] { TranslationTask{3}.generate(tmp / "file/d", 1, 10, 10); });
  EXPECT_EQ(msg.rfind("translation task: cannot create directory '" + (tmp / "file/d") + "': ", 0),
            0u)
      << msg;
}

TEST(TranslationTask, ExactMatch) {
  // Three rows of T = 4; -1 is ignored.
  const std::vector<int32_t> targets = {5, 6, 2, -1, 7, 2, -1, -1, -1, -1, -1, -1};
  std::vector<int32_t> pred = {5, 6, 2, 9, 7, 3, 0, 0, 4, 4, 4, 4};
  TaskScore s = TranslationTask::score(targets.data(), pred.data(), 3, 4, -1);
  EXPECT_EQ(s.total, 2);  // the third row has no target
  EXPECT_EQ(s.correct, 1);
  pred[5] = 2;
  s = TranslationTask::score(targets.data(), pred.data(), 3, 4, -1);
  EXPECT_EQ(s.correct, 2);
  pred[2] = 1;  // a wrong eos is wrong
  s = TranslationTask::score(targets.data(), pred.data(), 3, 4, -1);
  EXPECT_EQ(s.correct, 1);
}

}  // namespace
}  // namespace ph
