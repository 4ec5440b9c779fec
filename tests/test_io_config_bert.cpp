// BERT's config keys: the family defaults (post-LN, gelu_erf, LayerNorm eps 1e-12, two token
// types, [PAD] [CLS] [SEP] [MASK], the copies task) for the keys a config leaves out, the keys
// only BERT has, and one message per bad value: missing special tokens, data.mlm.prob outside
// (0, 1), max_predictions too small for prob x seq_len, sequences too short for two segments,
// whole-word masking where no word fits in a sequence's predictions.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "io/config.h"

namespace ph {
namespace {

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    parse_config(yaml, overrides, "test.yaml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

const std::string kBert = "model: {type: bert, vocab_size: 260, seq_len: 56}\n";

TEST(BertConfig, BertsDefaultsApplyToTheKeysNotGiven) {
  const Config c = parse_config(kBert, {}, "t");
  EXPECT_EQ(c.model.norm, Norm::kPost);
  EXPECT_EQ(c.model.activation, Activation::kGeluErf);
  EXPECT_EQ(c.model.layer_norm_eps, 1e-12f);
  EXPECT_EQ(c.model.type_vocab_size, 2);
  EXPECT_EQ(c.model.sentence_head, SentenceHead::kNone);
  EXPECT_EQ(c.model.pos_encoding, PosEncoding::kLearned);
  EXPECT_FALSE(c.model.embed_scale);
  EXPECT_EQ(c.data.task, Task::kCopies);
  EXPECT_EQ(c.data.pad_token, "[PAD]");
  EXPECT_EQ(c.data.cls_token, "[CLS]");
  EXPECT_EQ(c.data.sep_token, "[SEP]");
  EXPECT_EQ(c.data.mask_token, "[MASK]");
  EXPECT_EQ(c.data.mlm_predictions(c.model.seq_len), 9);  // ceil(0.15 x 56)
  // A value that is given stays; the other families keep theirs.
  const Config g = parse_config(kBert, {"model.layer_norm_eps=1e-5", "model.norm=pre"}, "t");
  EXPECT_EQ(g.model.layer_norm_eps, 1e-5f);
  EXPECT_EQ(g.model.norm, Norm::kPre);
  const Config gpt = parse_config("", {}, "t");
  EXPECT_EQ(gpt.model.layer_norm_eps, 1e-5f);
  EXPECT_EQ(gpt.model.activation, Activation::kGelu);
  EXPECT_EQ(gpt.model.type_vocab_size, 0);
  EXPECT_EQ(parse_config(config_to_yaml(c), {}, "resolved"), c);
}

TEST(BertConfig, PredictionsRoundTheProductUp) {
  DataConfig d;
  EXPECT_EQ(d.mlm_predictions(128), 20);  // 19.2
  EXPECT_EQ(d.mlm_predictions(512), 77);  // 76.8
  EXPECT_EQ(d.mlm_predictions(20), 3);    // 3.0000001 in float: still 3
  d.mlm_max_predictions = 80;
  EXPECT_EQ(d.mlm_predictions(512), 80);
}

TEST(BertConfig, BadValuesHaveOneMessageEach) {
  EXPECT_EQ(parse_error(kBert, {"data.mlm.prob=0"}),
            "command line: data.mlm.prob: must be in (0, 1), got 0.0");
  EXPECT_EQ(parse_error(kBert, {"data.mlm.prob=1"}),
            "command line: data.mlm.prob: must be in (0, 1), got 1.0");
  EXPECT_EQ(parse_error(kBert, {"data.mlm.max_predictions=8"}),
            "command line: data.mlm.max_predictions: max_predictions (8) is too small for "
            "data.mlm.prob x model.seq_len (0.15 x 56): at least 9");
  EXPECT_EQ(parse_error(kBert, {"data.mlm.max_predictions=57"}),
            "command line: data.mlm.max_predictions: max_predictions (57) exceeds seq_len (56)");
  EXPECT_EQ(parse_error(kBert, {"data.cls_token=''"}),
            "command line: data.cls_token: a bert model needs it ([CLS] starts a sequence, [SEP] "
            "ends a segment, [MASK] stands for a predicted token, [PAD] fills)");
  EXPECT_EQ(parse_error(kBert, {"data.mask_token=''"}).substr(0, 45),
            "command line: data.mask_token: a bert model n");
  EXPECT_EQ(parse_error(kBert, {"data.sep_token=''"}).substr(0, 44),
            "command line: data.sep_token: a bert model n");
  EXPECT_EQ(parse_error("model: {type: bert, seq_len: 4, sentence_head: nsp}\n"
                        "data: {train: [a.bin], tokenizer: tok}\n"),
            "test.yaml: model.seq_len: seq_len (4) is too short for two segments: [CLS] A [SEP] B "
            "[SEP] needs at least 5 positions");
  EXPECT_EQ(parse_error(kBert, {"model.sentence_head=sop", "model.type_vocab_size=1"}),
            "command line: model.type_vocab_size: a sentence head needs two token types (segments "
            "A and B), got 1");
  EXPECT_EQ(parse_error(kBert, {"model.sentence_head=nsp"}), "");  // 2 x 18 + 3 <= 56
  EXPECT_EQ(parse_error(kBert, {"model.sentence_head=nsp", "model.seq_len=38"}),
            "command line: model.seq_len: seq_len (38) must hold two segments of one line of "
            "copies (39 tokens with [CLS] and [SEP])");
  EXPECT_EQ(parse_error(kBert, {"model.seq_len=19"}),
            "command line: model.seq_len: seq_len (19) must hold one line of copies (20 tokens "
            "with [CLS] and [SEP])");
  EXPECT_EQ(parse_error(kBert, {"model.sentence_head=mlm"}),
            "command line: model.sentence_head: must be one of {none, nsp, sop}, got 'mlm'");
  EXPECT_EQ(parse_error(kBert, {"model.tie_embeddings=false"}),
            "command line: model.tie_embeddings: is gpt only: a bert model's masked-LM decoder is "
            "always wte");
}

// Whole-word masking on a synthetic task: an addition line is one word (nothing fits in the
// predictions); a copies word is 5 or 6 tokens, so fewer predictions would only mask newlines.
TEST(BertConfig, WholeWordMaskingNeedsRoomForAWord) {
  EXPECT_EQ(parse_error(kBert + "data: {task: addition, mlm: {whole_word: true}}\n"),
            "test.yaml: data.mlm.whole_word: the synthetic task's lines have no spaces: each line "
            "would be one word, longer than the predictions of a sequence, and nothing would be "
            "masked");
  EXPECT_EQ(parse_error("model: {type: bert, vocab_size: 260, seq_len: 20}\n",
                        {"data.mlm.whole_word=true"}),
            "command line: data.mlm.whole_word: a word of the copies task is a copy of 5 or 6 "
            "tokens, but a sequence has at most 3 predictions, so only the newlines would be "
            "masked; raise model.seq_len or data.mlm.prob");
  EXPECT_EQ(parse_error(kBert, {"data.mlm.whole_word=true", "data.mlm.max_predictions=5"}),
            "command line: data.mlm.whole_word: a word of the copies task is a copy of 5 or 6 "
            "tokens, but a sequence has at most 5 predictions, so only the newlines would be "
            "masked; raise model.seq_len or data.mlm.prob");
  // 56 tokens: round(54 x 0.15) = 8 predictions hold a copy.
  EXPECT_EQ(parse_error(kBert, {"data.mlm.whole_word=true"}), "");
}

TEST(BertConfig, BertsKeysAreErrorsInTheOtherFamilies) {
  EXPECT_EQ(
      parse_error("model: {type_vocab_size: 2}\n"),
      "test.yaml: model.type_vocab_size: only a bert model has it (model.type is gpt), got 2");
  EXPECT_EQ(parse_error("model: {type: encdec, sentence_head: nsp}\n"),
            "test.yaml: model.sentence_head: only a bert model has it (model.type is encdec), got "
            "nsp");
  EXPECT_EQ(parse_error("data: {mlm: {prob: 0.2}}\n"),
            "test.yaml: data.mlm.prob: only a bert model has it (model.type is gpt), got 0.2");
  EXPECT_EQ(parse_error("", {"data.mlm.whole_word=true"}),
            "command line: data.mlm.whole_word: only a bert model has it (model.type is gpt), got "
            "true");
  EXPECT_EQ(parse_error(kBert, {"model.src_seq_len=8"}),
            "command line: model.src_seq_len: only an encdec model has it (model.type is bert), "
            "got 8");
  // gelu_erf and layer_norm_eps belong to every family.
  EXPECT_EQ(parse_error("model: {activation: gelu_erf, layer_norm_eps: 1e-6}\n"), "");
}

}  // namespace
}  // namespace ph
