// Acceptance: a vocabulary trained by `polyhead tokenizer train` loads into HF `tokenizers`
// (BPE from vocab.json + merges.txt, GPT-2's byte-level pre-tokenizer and decoder), and HF
// encodes multilingual text (the training corpus, tests/fixtures/tokenizer/multilingual.txt and
// a text of its own) to exactly the ids that `polyhead tokenizer encode` writes.
// Skips without the Python environment of launch/pyenv.sh.
#include <gtest/gtest.h>

#include "hf_peer.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::run_command;
using testing::TempDir;

const std::string kBin = testing::polyhead_binary();
const std::string kCorpus = testing::source_dir() + "/tests/fixtures/tokenizer/train_corpus.txt";

// Text the corpus does not hold: other scripts, contractions, digits, runs of white space,
// emoji (4-byte UTF-8 that byte-level tokens split), a character and its combining accent.
const char* kOtherText =
    "It's 2024 -- they'll've said \"we're done\"; I'd say NOT (yet)...\n"
    "    indented    line\twith\ttabs   \n\n\n"
    "Größenwahn, Übermaß, façade, naïve; e\xCC\x81t\xC3\xA9\n"
    "Съешь же ещё этих мягких французских булок, да выпей чаю.\n"
    "日本語のテキストと中文文本，还有한국어 문장도 있습니다。\n"
    "Emoji: \xF0\x9F\x98\x80\xF0\x9F\x91\x8D\xF0\x9F\x8F\xBD and math: x\xC2\xB2 + y\xC2\xB2 = "
    "z\xC2\xB2, 3.14159\n"
    "   \n \xE3\x80\x80"
    "full-width\xE3\x80\x80"
    "space\xC2\xA0"
    "nbsp\n";

void expect_same_ids(const std::string& tok, const std::string& text, const TempDir& tmp) {
  const std::string shard = tmp / "ids.bin";
  const testing::RunResult enc = run_command(kBin + " tokenizer encode --tokenizer " + tok +
                                             " --input " + text + " --out " + shard);
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  const testing::RunResult peer =
      testing::run_hf_peer("compat --tokenizer " + tok + " --text " + text + " --ids " + shard);
  EXPECT_EQ(peer.exit_code, 0) << peer.output;
  std::printf("%s", peer.output.c_str());
}

TEST(BpeHfCompat, HfEncodesLikePolyheadWithAPolyheadVocabulary) {
  if (const std::string why = testing::hf_peer_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  const std::string tok = tmp / "tok";
  const testing::RunResult train =
      run_command(kBin + " tokenizer train --input " + kCorpus + " --vocab-size 5000 --out " + tok +
                  " --special '<|endoftext|>' --threads 2");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  expect_same_ids(tok, kCorpus, tmp);
  expect_same_ids(tok, testing::source_dir() + "/tests/fixtures/tokenizer/multilingual.txt", tmp);
  testing::write_file(tmp / "other.txt", kOtherText);
  expect_same_ids(tok, tmp / "other.txt", tmp);
}

}  // namespace
}  // namespace ph
