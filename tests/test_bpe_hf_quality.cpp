// Acceptance: on the same corpus and vocabulary size, polyhead's BPE vocabulary compresses the
// corpus to at most 1% more tokens per byte than HF `tokenizers`' BpeTrainer does (both with
// min_frequency 2 and the 256 bytes as the initial alphabet; each vocabulary encodes the corpus
// with its own encoder). Skips without the Python environment of launch/pyenv.sh.
#include <gtest/gtest.h>

#include "hf_peer.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::run_command;
using testing::TempDir;

const std::string kBin = testing::polyhead_binary();
const std::string kCorpus = testing::source_dir() + "/tests/fixtures/tokenizer/train_corpus.txt";

TEST(BpeHfQuality, TokensPerByteWithinOnePercentOfHf) {
  if (const std::string why = testing::hf_peer_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  for (const int vocab : {1000, 2000}) {
    const std::string tok = tmp / ("tok" + std::to_string(vocab));
    const std::string shard = tok + ".bin";
    const testing::RunResult train =
        run_command(kBin + " tokenizer train --input " + kCorpus + " --vocab-size " +
                    std::to_string(vocab) + " --min-frequency 2 --out " + tok);
    ASSERT_EQ(train.exit_code, 0) << train.output;
    const testing::RunResult enc = run_command(kBin + " tokenizer encode --tokenizer " + tok +
                                               " --input " + kCorpus + " --out " + shard);
    ASSERT_EQ(enc.exit_code, 0) << enc.output;
    const testing::RunResult peer =
        testing::run_hf_peer("quality --corpus " + kCorpus + " --vocab-size " +
                             std::to_string(vocab) + " --min-frequency 2 --ids " + shard);
    EXPECT_EQ(peer.exit_code, 0) << peer.output;
    std::printf("%s", peer.output.c_str());
  }
}

}  // namespace
}  // namespace ph
