// The encoder-decoder's config keys: model.type encdec, the paper's defaults for the keys the
// user did not give (and only those), the resolved config reading back to the same config, the
// help, the architecture comparison of "0 means n_layers / seq_len", and one message per bad
// value: ranges, another family's keys, a bad sharing mode.
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

TEST(EncDecConfig, ThePapersDefaultsApplyToTheKeysNotGiven) {
  const Config c = parse_config("model: {type: encdec}\n", {}, "t");
  EXPECT_EQ(c.model.type, ModelType::kEncDec);
  EXPECT_EQ(c.model.norm, Norm::kPost);
  EXPECT_EQ(c.model.pos_encoding, PosEncoding::kSinusoidal);
  EXPECT_TRUE(c.model.embed_scale);
  EXPECT_EQ(c.model.activation, Activation::kRelu);
  EXPECT_EQ(c.model.share_embeddings, ShareEmbeddings::kAll);
  EXPECT_EQ(c.model.encoder_depth(), c.model.n_layers);
  EXPECT_EQ(c.model.decoder_depth(), c.model.n_layers);
  EXPECT_EQ(c.model.source_len(), c.model.seq_len);
  // Given in the file or on the command line, a value stays, also when it equals the GPT default.
  const Config g = parse_config("model: {type: encdec, norm: pre, embed_scale: false}\n",
                                {"model.activation=gelu", "model.pos_encoding=learned"}, "t");
  EXPECT_EQ(g.model.norm, Norm::kPre);
  EXPECT_FALSE(g.model.embed_scale);
  EXPECT_EQ(g.model.activation, Activation::kGelu);
  EXPECT_EQ(g.model.pos_encoding, PosEncoding::kLearned);
  // The type given on the command line brings the defaults too; a GPT keeps its own.
  EXPECT_EQ(parse_config("", {"model.type=encdec"}, "t").model.norm, Norm::kPost);
  const Config gpt = parse_config("", {}, "t");
  EXPECT_EQ(gpt.model.norm, Norm::kPre);
  EXPECT_EQ(gpt.model.pos_encoding, PosEncoding::kLearned);
}

TEST(EncDecConfig, TheResolvedConfigReadsBackToTheSameConfig) {
  const Config c = parse_config(
      "model: {type: encdec, encoder_layers: 3, decoder_layers: 2, src_seq_len: 40, "
      "share_embeddings: tgt_out, norm: pre}\n",
      {}, "t");
  EXPECT_EQ(c.model.encoder_depth(), 3);
  EXPECT_EQ(c.model.decoder_depth(), 2);
  EXPECT_EQ(c.model.source_len(), 40);
  EXPECT_EQ(c.model.share_embeddings, ShareEmbeddings::kTgtOut);
  EXPECT_EQ(parse_config(config_to_yaml(c), {}, "resolved"), c);
}

TEST(EncDecConfig, HelpNamesTheKeysAndTheFamilyDefaults) {
  const std::string help = config_help();
  for (const char* s :
       {"model.encoder_layers", "model.decoder_layers", "model.src_seq_len",
        "model.share_embeddings", "{none, tgt_out, all}", "encdec default: post",
        "encdec default: sinusoidal", "encdec default: relu", "encdec default: true"})
    EXPECT_NE(help.find(s), std::string::npos) << s;
}

// "0 means n_layers / seq_len" and the number itself are the same architecture.
TEST(EncDecConfig, DepthsAndSourceLengthCompareAsResolved) {
  const Config a = parse_config("model: {type: encdec, n_layers: 6, seq_len: 32}\n", {}, "a");
  const Config b = parse_config(
      "model: {type: encdec, n_layers: 6, seq_len: 32, encoder_layers: 6, decoder_layers: 6, "
      "src_seq_len: 32}\n",
      {}, "b");
  EXPECT_TRUE(config_differences(a, b, true).empty());
  const Config c =
      parse_config("model: {type: encdec, n_layers: 6, seq_len: 32, src_seq_len: 48}\n", {}, "c");
  const auto d = config_differences(a, c, true);
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].key, "model.src_seq_len");
}

TEST(EncDecConfig, BadValuesHaveOneMessageEach) {
  EXPECT_EQ(parse_error("model: {type: encdec, src_seq_len: -1}\n"),
            "test.yaml: model.src_seq_len: must be >= 0, got -1");
  EXPECT_EQ(parse_error("model: {type: encdec, encoder_layers: 5000}\n"),
            "test.yaml: model.encoder_layers: must be in [0, 4096], got 5000");
  EXPECT_EQ(parse_error("model: {type: encdec, decoder_layers: -2}\n"),
            "test.yaml: model.decoder_layers: must be in [0, 4096], got -2");
  EXPECT_EQ(parse_error("model: {type: encdec, share_embeddings: src}\n"),
            "test.yaml: model.share_embeddings: must be one of {none, tgt_out, all}, got 'src'");
  EXPECT_EQ(parse_error("model: {type: encoder}\n"),
            "test.yaml: model.type: must be one of {gpt, encdec, bert}, got 'encoder'");
}

// A key of the other family is an error, not silently ignored (a config that forgot
// model.type: encdec would otherwise train a GPT).
TEST(EncDecConfig, AnotherFamilysKeysAreErrors) {
  EXPECT_EQ(parse_error("model: {encoder_layers: 6}\n"),
            "test.yaml: model.encoder_layers: only an encdec model has it (model.type is gpt), "
            "got 6");
  EXPECT_EQ(parse_error("model: {decoder_layers: 6}\n"),
            "test.yaml: model.decoder_layers: only an encdec model has it (model.type is gpt), "
            "got 6");
  EXPECT_EQ(parse_error("", {"model.src_seq_len=100"}),
            "command line: model.src_seq_len: only an encdec model has it (model.type is gpt), "
            "got 100");
  EXPECT_EQ(parse_error("model: {share_embeddings: none}\n"),
            "test.yaml: model.share_embeddings: only an encdec model has it (model.type is gpt) "
            "(gpt: model.tie_embeddings), got none");
  EXPECT_EQ(parse_error("model: {type: encdec, tie_embeddings: false}\n"),
            "test.yaml: model.tie_embeddings: is gpt only: an encdec model ties its embeddings "
            "with model.share_embeddings");
  // The blame goes to the command line when it set the type.
  EXPECT_EQ(parse_error("model: {encoder_layers: 2}\n", {"model.type=gpt"}),
            "command line: model.encoder_layers: only an encdec model has it (model.type is gpt), "
            "got 2");
}

}  // namespace
}  // namespace ph
