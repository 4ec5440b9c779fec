// BERT's synthetic tasks (io/mlm_task.h): their tokenizer (the bytes, then the special tokens),
// the files they leave alone, and the two baselines a masked token must beat the context to be
// predicted: on the held-out split, the most frequent target given the token the model sees at
// the slot ("unigram") must score below 0.30, and the most frequent target given the two tokens
// beside it ("bigram", as the model sees them and as they were before masking), trained on the
// training split, below 0.50. On the copies task the context does predict a masked letter: the
// same place in another copy, as the model sees it, gives it back almost always.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/mlm_dataset.h"
#include "io/mlm_task.h"
#include "io/tokenizer.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::TempDir;

const std::vector<std::string> kSpecials = {"[PAD]", "[CLS]", "[SEP]", "[MASK]"};

TEST(MlmTask, TokenizerIsTheBytesThenTheSpecials) {
  TempDir dir;
  MlmTask task;
  EXPECT_EQ(task.task, Task::kCopies);  // BERT's default
  EXPECT_EQ(task.line_length(), 18);
  task.generate(dir.path.string(), 5, 50, 20, kSpecials);
  EXPECT_EQ(std::filesystem::file_size(dir / "val.bin"), 1024u + 2 * 20 * 18);
  const Tokenizer tok = Tokenizer::load(dir / "tokenizer");
  EXPECT_EQ(tok.size(), 260);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(tok.id_of(kSpecials[static_cast<size_t>(i)]), 256 + i);
  const std::string line = "123+456=9750\n";
  std::vector<int32_t> bytes;
  for (const char c : line) bytes.push_back(static_cast<unsigned char>(c));
  EXPECT_EQ(tok.encode(line), bytes);
  EXPECT_EQ(tok.encode("[CLS]").size(), 5u);  // text never injects a special token
  // Generating again leaves the files alone; other specials make another tokenizer.
  const auto stamp = std::filesystem::last_write_time(dir / "tokenizer/vocab.json");
  task.generate(dir.path.string(), 5, 50, 20, kSpecials);
  EXPECT_EQ(std::filesystem::last_write_time(dir / "tokenizer/vocab.json"), stamp);
  task.generate(dir.path.string(), 5, 50, 20, {"<pad>", "<cls>", "<sep>", "<mask>"});
  EXPECT_EQ(Tokenizer::load(dir / "tokenizer").id_of("<mask>"), 259);
  EXPECT_THROW(MlmTask::vocab_json({"[CLS]", "x"}), InputError);
  EXPECT_THROW(MlmTask::vocab_json({"[CLS]", "[CLS]"}), InputError);
}

TEST(MlmTask, GeneratesTheConfiguredTask) {
  TempDir dir;
  MlmTask task;
  task.task = Task::kAddition;
  task.addition.digits = 2;
  EXPECT_EQ(task.line_length(), 10);
  task.generate(dir.path.string(), 5, 50, 20, kSpecials);
  EXPECT_EQ(std::filesystem::file_size(dir / "val.bin"), 1024u + 2 * 20 * 10);
  task.task = Task::kTranslation;
  EXPECT_THROW(task.generate(dir.path.string(), 5, 50, 20, kSpecials), std::invalid_argument);
}

// The most frequent target for each context, from the training samples.
struct Baseline {
  std::map<int64_t, std::map<int32_t, int>> counts;
  void add(int64_t context, int32_t target) { ++counts[context][target]; }
  int32_t predict(int64_t context) const {
    const auto it = counts.find(context);
    if (it == counts.end()) return -1;
    int32_t best = -1;
    int most = 0;
    for (const auto& [target, n] : it->second)
      if (n > most) most = n, best = target;
    return best;
  }
};

struct Slot {
  int64_t seen, left, right, left0, right0;  // the input and its neighbours, masked and original
  int32_t target;
  int position;
  std::vector<int32_t> row;  // the sequence as the model sees it
};

std::vector<Slot> slots(MlmDataset& d, uint64_t samples) {
  const int T = d.seq_len(), P = d.predictions();
  std::vector<int32_t> tokens(static_cast<size_t>(T)), types(tokens.size()), positions(P),
      targets(P);
  int32_t length = 0;
  std::vector<Slot> out;
  for (uint64_t s = 0; s < samples; ++s) {
    d.fill(s, 1, MlmRows{tokens.data(), types.data(), &length, positions.data(), targets.data()});
    std::vector<int32_t> original = tokens;
    for (int i = 0; i < P && targets[static_cast<size_t>(i)] >= 0; ++i)
      original[static_cast<size_t>(positions[static_cast<size_t>(i)])] =
          targets[static_cast<size_t>(i)];
    for (int i = 0; i < P && targets[static_cast<size_t>(i)] >= 0; ++i) {
      const size_t t = static_cast<size_t>(positions[static_cast<size_t>(i)]);
      out.push_back(Slot{tokens[t], tokens[t - 1], tokens[t + 1], original[t - 1], original[t + 1],
                         targets[static_cast<size_t>(i)], static_cast<int>(t), tokens});
    }
  }
  return out;
}

constexpr int32_t kMask = 259;

// The copies task's answer from the context: a separator by its place in the line, a letter as
// the model sees it at the same place in another copy of the word (the first one not [MASK]).
int32_t copy_oracle(const Slot& s) {
  const int offset = (s.position - 1) % 18, copy = offset / 6, letter = offset % 6;
  if (letter == 5) return copy == 2 ? '\n' : ' ';
  for (int other = 0; other < 3; ++other) {
    const int32_t seen = s.row[static_cast<size_t>(s.position + 6 * (other - copy))];
    if (other != copy && seen != kMask) return seen;
  }
  return -1;
}

struct Baselines {
  double n = 0, unigram = 0, bigram = 0, bigram0 = 0, oracle = 0;
};

Baselines measure(const MlmTask& task, int seq_len, bool whole_word) {
  TempDir dir;
  task.generate(dir.path.string(), 1337, 40000, 2000, kSpecials);
  const Tokenizer tok = Tokenizer::load(dir / "tokenizer");
  const std::vector<int32_t> specials = {256, 257, 258, 259};
  const auto open = [&](const std::string& file, uint64_t seed) {
    MlmDatasetOptions o;
    o.seq_len = seq_len;  // [CLS] + whole lines + [SEP]
    o.vocab_size = 260;
    o.pad = 256;
    o.cls = 257;
    o.sep = 258;
    o.shuffle = false;
    o.seed = seed;
    MlmMaskingOptions m;
    m.predictions = (seq_len * 15 + 99) / 100;  // ceil(0.15 * T), the config's default
    m.whole_word = whole_word;
    m.mask = kMask;
    m.ignore_index = -100;
    return MlmDataset({dir / file}, o, MlmMasking(m, mlm_token_classes(tok, specials)));
  };
  MlmDataset train = open("train.bin", 1337), val = open("val.bin", 0);
  Baseline unigram, bigram, bigram0;
  for (const Slot& s : slots(train, 2 * train.num_chunks())) {  // two epochs of masks
    unigram.add(s.seen, s.target);
    bigram.add(s.left * 1024 + s.right, s.target);
    bigram0.add(s.left0 * 1024 + s.right0, s.target);
  }
  Baselines r;
  for (const Slot& s : slots(val, val.num_chunks())) {
    r.n += 1;
    r.unigram += unigram.predict(s.seen) == s.target;
    r.bigram += bigram.predict(s.left * 1024 + s.right) == s.target;
    r.bigram0 += bigram0.predict(s.left0 * 1024 + s.right0) == s.target;
    if (task.task == Task::kCopies) r.oracle += copy_oracle(s) == s.target;
  }
  std::printf(
      "%s, seq_len %d%s: held-out masked tokens %.0f: unigram %.3f, bigram %.3f "
      "(unmasked neighbours %.3f)",
      name_of(task.task).c_str(), seq_len, whole_word ? ", whole words" : "", r.n, r.unigram / r.n,
      r.bigram / r.n, r.bigram0 / r.n);
  if (task.task == Task::kCopies) std::printf(", another copy %.3f", r.oracle / r.n);
  std::printf("\n");
  return r;
}

void expect_context_needed(const Baselines& r) {
  EXPECT_GT(r.n, 3000);
  EXPECT_LT(r.unigram / r.n, 0.30);
  EXPECT_LT(r.bigram / r.n, 0.50);
  EXPECT_LT(r.bigram0 / r.n, 0.50);
}

TEST(MlmTask, CopiesNeedTheContextAndTheContextSuffices) {
  MlmTask task;  // the defaults of configs/bert-tiny.yaml: 18-byte lines, three per sequence
  const Baselines r = measure(task, 2 + 3 * 18, false);
  expect_context_needed(r);
  EXPECT_GT(r.oracle / r.n, 0.95);
}

// With whole words, a sequence's 8 predictions take one copy " qwert" (6 tokens) and then only
// units of one token fit: newlines. A quarter of the targets are then newlines, which [MASK]
// alone predicts: the unigram baseline passes 0.30 (0.357 at seed 1337), the bigram one stays
// below 0.50, and a masked copy is always readable from the other two.
TEST(MlmTask, CopiesWithWholeWords) {
  const Baselines r = measure(MlmTask(), 2 + 3 * 18, true);
  EXPECT_GT(r.n, 3000);
  EXPECT_LT(r.unigram / r.n, 0.40);
  EXPECT_LT(r.bigram / r.n, 0.50);
  EXPECT_LT(r.bigram0 / r.n, 0.50);
  EXPECT_EQ(r.oracle, r.n);
}

TEST(MlmTask, AdditionNeedsTheContext) {
  MlmTask task;
  task.task = Task::kAddition;
  task.addition.digits = 3;  // 13-byte lines, four per sequence
  expect_context_needed(measure(task, 2 + 4 * 13, false));
}

}  // namespace
}  // namespace ph
