// The acceptance test of polyhead's BPE: `polyhead tokenizer encode` with GPT-2's ranks gives
// tiktoken's ids, id for id, and `polyhead tokenizer decode` gives the bytes back.
//   - tests/fixtures/tokenizer/multilingual.txt (valid UTF-8: prose, code, Chinese, Japanese,
//     Korean, Arabic, Hindi, emoji with ZWJ sequences and skin tones, runs of spaces, tabs,
//     newlines and U+3000, digits of several scripts, contractions, combining marks) against
//     tiktoken's enc.encode_ordinary(text).
//   - tests/fixtures/tokenizer/invalid_utf8.txt (stray, truncated, overlong, surrogate and
//     out-of-range bytes among text): tiktoken takes only str, so the reference is tiktoken's
//     BPE of each piece (Encoding._encode_single_piece) over the pieces that GPT-2's pattern
//     (Python's regex module) gives on data.decode("utf-8", "surrogateescape") — each invalid
//     byte a lone surrogate, neither letter, number nor space (tests/tokenizer/
//     tiktoken_reference.py).
//   - GPT-2 as vocab.json + merges.txt (converted from the ranks by
//     tests/tokenizer/tiktoken_to_hf.py) gives the same ids.
//   - every code point's class (io/unicode_classes.h) is tiktoken's
//     (tests/tokenizer/unicode_classes_tiktoken.py).
// The peers: the interpreter $POLYHEAD_PYTHON or <source>/.venv/bin/python, GPT-2's ranks
// $POLYHEAD_GPT2_TIKTOKEN or <source>/.venv/share/gpt2.tiktoken; without them every test skips
// (launch/pyenv.sh makes both).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/bpe.h"
#include "io/config.h"
#include "io/shard.h"
#include "io/unicode_classes.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::run_command;
using testing::TempDir;

const std::string kBin = testing::polyhead_binary();
const std::string kSource = testing::source_dir();
const std::string kFixtures = kSource + "/tests/fixtures/tokenizer/";
const std::string kScripts = kSource + "/tests/tokenizer/";

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

const std::string kPython = env_or("POLYHEAD_PYTHON", kSource + "/.venv/bin/python");
const std::string kRanks = env_or("POLYHEAD_GPT2_TIKTOKEN", kSource + "/.venv/share/gpt2.tiktoken");

// Why the peers cannot run, or "".
std::string peers_missing() {
  if (!std::filesystem::exists(kRanks)) {
    return "GPT-2's ranks '" + kRanks + "' are missing: run launch/pyenv.sh (or set " +
           "POLYHEAD_GPT2_TIKTOKEN)";
  }
  const auto r = run_command("'" + kPython + "' -c 'import tiktoken, regex'");
  if (r.exit_code != 0) {
    return "'" + kPython + "' cannot import tiktoken and regex: run launch/pyenv.sh (or set " +
           "POLYHEAD_PYTHON)\n" + r.output;
  }
  return "";
}

std::vector<int32_t> read_ids(const std::string& path) {
  const std::string bytes = testing::read_file(path);
  std::vector<int32_t> ids(bytes.size() / 4);
  std::memcpy(ids.data(), bytes.data(), ids.size() * 4);
  return ids;
}

std::vector<int32_t> shard_ids(const std::string& path) {
  const Shard shard = Shard::open(path, 1 << 30);
  std::vector<int32_t> ids(shard.size());
  shard.read(0, ids.size(), ids.data());
  return ids;
}

// The test's shared state: GPT-2 as vocab.json + merges.txt, converted once.
class TokenizerExactness : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!peers_missing().empty()) return;
    tmp_ = new TempDir;
    const auto r = run_command("'" + kPython + "' " + kScripts + "tiktoken_to_hf.py '" + kRanks +
                               "' " + (*tmp_ / "gpt2"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  static void TearDownTestSuite() {
    delete tmp_;
    tmp_ = nullptr;
  }
  void SetUp() override {
    if (const std::string why = peers_missing(); !why.empty()) GTEST_SKIP() << why;
  }

  // Encodes `input` through the CLI with both forms of GPT-2 and 1 and 2 threads, compares
  // with tiktoken's ids and decodes back.
  static void expect_tiktoken_ids(const std::string& input) {
    TempDir work;
    const auto ref = run_command("'" + kPython + "' " + kScripts + "tiktoken_reference.py '" +
                                 kRanks + "' '" + input + "' " + (work / "ref.i32"));
    ASSERT_EQ(ref.exit_code, 0) << ref.output;
    const std::vector<int32_t> expected = read_ids(work / "ref.i32");
    ASSERT_FALSE(expected.empty());
    const BpeTokenizer gpt2 = BpeTokenizer::load(kRanks);
    const std::string text = testing::read_file(input);
    for (const std::string& tok : {kRanks, *tmp_ / "gpt2"}) {
      for (const int threads : {1, 2}) {
        SCOPED_TRACE(tok + ", " + std::to_string(threads) + " thread(s)");
        const std::string shard = work / "out.bin";
        const auto enc =
            run_command(kBin + " tokenizer encode --tokenizer '" + tok + "' --input '" + input +
                        "' --out " + shard + " --threads " + std::to_string(threads));
        ASSERT_EQ(enc.exit_code, 0) << enc.output;
        const std::vector<int32_t> got = shard_ids(shard);
        size_t at = 0;
        while (at < got.size() && at < expected.size() && got[at] == expected[at]) ++at;
        if (at < got.size() || at < expected.size()) {
          const size_t from = at >= 3 ? at - 3 : 0;
          const size_t to = std::min(at + 3, std::min(got.size(), expected.size()));
          ADD_FAILURE() << "ids differ from token " << at << " on (" << got.size() << " vs "
                        << expected.size() << " tokens); polyhead's tokens "
                        << printable(gpt2.decode(got.data() + from, to - from)) << ", tiktoken's "
                        << printable(gpt2.decode(expected.data() + from, to - from));
        }
        const auto dec = run_command(kBin + " tokenizer decode --tokenizer '" + tok + "' --input " +
                                     shard + " > " + (work / "back.txt"));
        ASSERT_EQ(dec.exit_code, 0) << dec.output;
        EXPECT_TRUE(testing::read_file(work / "back.txt") == text) << "decode(encode(x)) != x";
      }
    }
  }

  static TempDir* tmp_;
};

TempDir* TokenizerExactness::tmp_ = nullptr;

TEST_F(TokenizerExactness, MultilingualTextMatchesTiktoken) {
  expect_tiktoken_ids(kFixtures + "multilingual.txt");
}

TEST_F(TokenizerExactness, InvalidUtf8MatchesTiktokensBpeOverGpt2Pieces) {
  expect_tiktoken_ids(kFixtures + "invalid_utf8.txt");
}

TEST_F(TokenizerExactness, ParallelEncodingOfALargeTextMatchesTiktoken) {
  // 3 MB: encoded in several chunks on 2 threads.
  const std::string one = testing::read_file(kFixtures + "multilingual.txt");
  std::string text;
  for (int i = 0; text.size() < (size_t{3} << 20); ++i) text += one + std::to_string(i) + "\n\n";
  TempDir work;
  testing::write_file(work / "large.txt", text);
  expect_tiktoken_ids(work / "large.txt");
}

TEST_F(TokenizerExactness, CodePointClassesMatchTiktokenEverywhere) {
  TempDir work;
  std::string classes(0x110000, '\0');
  for (uint32_t c = 0; c < classes.size(); ++c) {
    classes[c] = static_cast<char>(code_point_class(c));
  }
  testing::write_file(work / "classes.bin", classes);
  const auto r = run_command("'" + kPython + "' " + kScripts + "unicode_classes_tiktoken.py " +
                             (work / "classes.bin"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
}

}  // namespace
}  // namespace ph
