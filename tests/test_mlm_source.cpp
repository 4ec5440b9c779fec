// BERT's data in the trainer (trainer/data_source.h, trainer/mlm_source.h): the synthetic task
// generated into the run directory with its tokenizer, the batches of model.type bert (shapes, P
// slots, sentence labels only with a sentence head), the same global batch for any split into
// micro-batches (any data-parallel layout) and after a reopen (resume), and a tokenizer without
// BERT's special tokens refused with one message.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "input_error.h"
#include "io/config.h"
#include "io/tokenizer.h"
#include "model/vocab_parallel_loss.h"
#include "test_util.h"
#include "trainer/data_source.h"

namespace ph {
namespace {

using testing::input_error;
using testing::TempDir;

Config bert_config(const TempDir& dir, const std::string& head) {
  return parse_config(
      "model: {type: bert, vocab_size: 260, seq_len: 55, sentence_head: " + head +
          "}\n"
          "data: {task_digits: 3, task_train_problems: 3000, task_val_problems: 200}\n"
          "run: {dir: " +
          dir.path.string() + "}\n",
      {}, "test");
}

DataSource open(const Config& cfg) {
  generate_task_data(cfg);
  EXPECT_TRUE(tokenizer_from_task(cfg));
  return open_data(cfg, true, "", Tokenizer::load(data_tokenizer_path(cfg)));
}

TEST(MlmSource, SyntheticTaskBatches) {
  TempDir dir;
  const Config cfg = bert_config(dir, "none");
  DataSource ds = open(cfg);
  ASSERT_TRUE(ds.train && ds.val);
  EXPECT_FALSE(ds.task.has_value());
  Batch b;
  ds.train->shape(b, 4);
  EXPECT_EQ(b.T, 55);
  EXPECT_EQ(b.P, cfg.data.mlm_predictions(55));
  EXPECT_EQ(b.targets.size(), 4u * static_cast<size_t>(b.P));
  EXPECT_EQ(b.mlm_positions.size(), 4u * static_cast<size_t>(b.P));
  EXPECT_TRUE(b.sentence_labels.empty());
  ds.train->fill(0, 4, b);
  for (int r = 0; r < 4; ++r) {
    const int32_t* t = b.tokens.data() + r * b.T;
    const int n = b.lengths[static_cast<size_t>(r)];
    EXPECT_EQ(t[0], 257);      // [CLS]
    EXPECT_EQ(t[n - 1], 258);  // [SEP]
    int predicted = 0;
    for (int i = 0; i < b.P; ++i)
      predicted += b.targets[static_cast<size_t>(r * b.P + i)] != kIgnoreIndex;
    if (n == 55) {
      EXPECT_EQ(predicted, 8);  // round(53 * 0.15)
    }
  }
}

TEST(MlmSource, AGlobalBatchIsTheSameForAnySplitAndAfterReopen) {
  for (const std::string head : {"none", "nsp", "sop"}) {
    TempDir dir;
    const Config cfg = bert_config(dir, head);
    DataSource one = open(cfg);
    const int G = 24;
    const uint64_t first = 9 * G;
    Batch whole;
    one.train->shape(whole, G);
    one.train->fill(first, G, whole);
    EXPECT_EQ(whole.sentence_labels.size(), head == "none" ? 0u : static_cast<size_t>(G));
    for (const int micro : {1, 5, 8}) {
      DataSource other = open(cfg);  // a fresh open: another rank, or a resumed run
      Batch part, joined;
      other.train->shape(part, micro);
      other.train->shape(joined, G);
      for (int begin = 0; begin < G; begin += micro) {
        const int count = std::min(micro, G - begin);
        other.train->fill(first + static_cast<uint64_t>(begin), count, part);
        const auto copy = [&](const std::vector<int32_t>& from, std::vector<int32_t>& to,
                              int width) {
          std::copy(from.begin(), from.begin() + count * width, to.begin() + begin * width);
        };
        copy(part.tokens, joined.tokens, part.T);
        copy(part.types, joined.types, part.T);
        copy(part.lengths, joined.lengths, 1);
        copy(part.mlm_positions, joined.mlm_positions, part.P);
        copy(part.targets, joined.targets, part.P);
        if (head != "none") copy(part.sentence_labels, joined.sentence_labels, 1);
      }
      EXPECT_EQ(joined.tokens, whole.tokens) << head << " " << micro;
      EXPECT_EQ(joined.types, whole.types);
      EXPECT_EQ(joined.lengths, whole.lengths);
      EXPECT_EQ(joined.mlm_positions, whole.mlm_positions);
      EXPECT_EQ(joined.targets, whole.targets);
      EXPECT_EQ(joined.sentence_labels, whole.sentence_labels);
    }
  }
}

TEST(MlmSource, RefusesATokenizerWithoutTheSpecialTokens) {
  TempDir dir;
  const Config cfg = bert_config(dir, "none");
  generate_task_data(cfg);
  EXPECT_EQ(input_error([&] { open_data(cfg, true, "", Tokenizer()); }),
            "data.cls_token \"[CLS]\" is not a token of the tokenizer");
}

}  // namespace
}  // namespace ph
