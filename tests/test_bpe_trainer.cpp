// BPE training (io/bpe_trainer.h) and `polyhead tokenizer train`: the vocabulary's layout (the
// bytes in GPT-2's order, merges, special tokens last), the same merges as the plain trainer of
// tests/naive_bpe.h on real text, the same files for any thread count, min_frequency, and every
// input error through the binary (exit status 2, one message).
// The corpus, tests/fixtures/tokenizer/train_corpus.txt (~300 KB), is Debian text: GPL-3 and
// Apache-2.0 from /usr/share/common-licenses, then manual pages in German, French, Russian,
// Japanese, Chinese, Korean, Ukrainian, Polish, Spanish, Czech and English (roff source with the
// request lines removed, as bench/tokenizer/make_corpus.sh does).
#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <sstream>

#include "io/bpe.h"
#include "io/bpe_trainer.h"
#include "io/byte_level.h"
#include "io/config.h"
#include "io/pretokenizer.h"
#include "naive_bpe.h"
#include "test_util.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::count_occurrences;
using testing::read_file;
using testing::run_command;
using testing::TempDir;
using testing::write_file;

const std::string kBin = testing::polyhead_binary();
const std::string kCorpus = testing::source_dir() + "/tests/fixtures/tokenizer/train_corpus.txt";

BpeTokenizer train(const std::vector<std::string>& inputs, int vocab, int threads,
                   std::vector<std::string> specials = {}, uint64_t min_frequency = 2,
                   BpeTrainResult* result = nullptr) {
  BpeTrainOptions o;
  o.vocab_size = vocab;
  o.threads = threads;
  o.specials = std::move(specials);
  o.min_frequency = min_frequency;
  return train_bpe(inputs, o, result);
}

// merges.txt as pairs of byte strings.
std::vector<std::pair<std::string, std::string>> merges_of(const BpeTokenizer& t) {
  std::vector<std::pair<std::string, std::string>> merges;
  std::istringstream in(t.merges_text());
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "#version: 0.2");
  while (std::getline(in, line)) {
    const size_t space = line.find(' ');
    EXPECT_NE(space, std::string::npos) << line;
    std::string a, b;
    EXPECT_TRUE(byte_level_decode(line.substr(0, space), &a)) << line;
    EXPECT_TRUE(byte_level_decode(line.substr(space + 1), &b)) << line;
    merges.emplace_back(a, b);
  }
  return merges;
}

TEST(BpeTrainer, VocabularyLayout) {
  BpeTrainResult result;
  const BpeTokenizer t = train({kCorpus}, 600, 2, {"<|endoftext|>", "<pad> x"}, 2, &result);
  ASSERT_EQ(t.size(), 600);
  const std::array<uint8_t, 256>& order = gpt2_byte_order();
  for (int id = 0; id < 256; ++id) {
    ASSERT_EQ(t.token_bytes(id), std::string(1, static_cast<char>(order[static_cast<size_t>(id)])));
  }
  EXPECT_EQ(t.token_bytes(598), "<|endoftext|>");
  EXPECT_EQ(t.token_bytes(599), "<pad> x");
  EXPECT_EQ(t.id_of("<|endoftext|>"), 598);
  EXPECT_EQ(t.id_of("<pad> x"), 599);
  EXPECT_EQ(t.vocab_text().rfind("{\"!\":0,\"\\\"\":1,\"#\":2,", 0), 0u)
      << t.vocab_text().substr(0, 40);
  EXPECT_NE(t.vocab_text().find("\"<pad>\xC4\xA0x\":599}"), std::string::npos);  // space is U+0120
  // Each merge makes a token of the vocabulary; new tokens appear in id order.
  const auto merges = merges_of(t);
  EXPECT_EQ(static_cast<int>(merges.size()), result.merges);
  int next_new = 256;
  for (const auto& [a, b] : merges) {
    const std::optional<int32_t> id = t.id_of(a + b);
    ASSERT_TRUE(id.has_value()) << a << " " << b;
    ASSERT_LE(*id, next_new);
    if (*id == next_new) ++next_new;
  }
  EXPECT_EQ(next_new, 598);
  // The statistics.
  const std::string text = read_file(kCorpus);
  EXPECT_EQ(result.bytes_read, text.size());
  uint64_t pieces = 0;
  std::set<std::string> distinct;
  for_each_gpt2_piece(text, [&](std::string_view p) {
    ++pieces;
    distinct.emplace(p);
  });
  EXPECT_EQ(result.pieces, pieces);
  EXPECT_EQ(result.unique_pieces, distinct.size());
  // It saves, loads back as the same files, and round-trips the corpus.
  TempDir tmp;
  t.save(tmp / "tok");
  const BpeTokenizer back = BpeTokenizer::load(tmp / "tok");
  EXPECT_EQ(back.vocab_text(), t.vocab_text());
  EXPECT_EQ(back.merges_text(), t.merges_text());
  const std::vector<int32_t> ids = back.encode(text);
  EXPECT_EQ(back.decode(ids.data(), ids.size()), text);
}

TEST(BpeTrainer, MatchesThePlainTrainerOnRealText) {
  const std::string text = read_file(kCorpus);
  std::map<std::string, uint64_t> counts;
  for_each_gpt2_piece(text, [&](std::string_view p) { ++counts[std::string(p)]; });
  const std::vector<std::pair<std::string, uint64_t>> words(counts.begin(), counts.end());
  std::vector<std::string> initial;
  for (const uint8_t b : gpt2_byte_order()) initial.emplace_back(1, static_cast<char>(b));
  const testing::NaiveBpe want = testing::naive_bpe(words, initial, 200, 2);
  const BpeTokenizer got = train({kCorpus}, 256 + 200, 2);
  EXPECT_EQ(merges_of(got), want.merges);
  for (size_t id = 0; id < want.tokens.size(); ++id) {
    ASSERT_EQ(got.token_bytes(static_cast<int32_t>(id)), want.tokens[id]) << id;
  }
}

TEST(BpeTrainer, SameFilesForAnyThreadCount) {
  const BpeTokenizer one = train({kCorpus}, 3000, 1);
  EXPECT_EQ(one.size(), 3000);
  for (const int threads : {2, 3}) {
    const BpeTokenizer t = train({kCorpus}, 3000, threads);
    EXPECT_EQ(t.vocab_text(), one.vocab_text()) << threads << " threads";
    EXPECT_EQ(t.merges_text(), one.merges_text()) << threads << " threads";
  }
}

TEST(BpeTrainer, MinFrequencyStopsEarlyWithASmallerVocabulary) {
  TempDir tmp;
  write_file(tmp / "c.txt", "low low low lower lower newest newest widest\n");
  BpeTrainResult result;
  const BpeTokenizer t = train({tmp / "c.txt"}, 1000, 1, {"<|endoftext|>"}, 3, &result);
  const std::vector<std::pair<std::string, uint64_t>> words = {
      {"low", 1}, {" low", 2}, {" lower", 2}, {" newest", 2}, {" widest", 1}, {"\n", 1}};
  std::vector<std::string> initial;
  for (const uint8_t b : gpt2_byte_order()) initial.emplace_back(1, static_cast<char>(b));
  const testing::NaiveBpe want = testing::naive_bpe(words, initial, 1000, 3);
  EXPECT_EQ(merges_of(t), want.merges);
  ASSERT_GT(want.merges.size(), 2u);
  EXPECT_EQ(result.merges, static_cast<int>(want.merges.size()));
  EXPECT_EQ(t.size(), static_cast<int>(want.tokens.size()) + 1);
  EXPECT_EQ(t.token_bytes(t.size() - 1), "<|endoftext|>");
}

TEST(BpeTrainer, SpecialTokensAreNeverLearned) {
  TempDir tmp;
  write_file(tmp / "c.txt", "ab ab ab ab cd cd\n");
  const BpeTokenizer t = train({tmp / "c.txt"}, 270, 1, {"ab", "Ġ"}, 2);
  // "ab" is the most frequent pair but spells a special token: it is not a merge.
  for (const auto& [a, b] : merges_of(t)) EXPECT_NE(a + b, "ab");
  EXPECT_EQ(t.id_of("ab"), t.size() - 2);
  EXPECT_EQ(t.id_of("Ġ"), t.size() - 1);  // two bytes in UTF-8, not the space's symbol
  const auto merges = merges_of(t);
  ASSERT_GE(merges.size(), 2u);
  EXPECT_EQ(merges[0], std::make_pair(std::string(" "), std::string("a")));  // 3 times
  EXPECT_EQ(merges[1], std::make_pair(std::string(" a"), std::string("b")));
}

// Runs polyhead and expects exit status 2 with `needle` printed exactly once, and nothing
// written to `out`.
void expect_bad_input(const std::string& args, const std::string& needle, const std::string& out) {
  const testing::RunResult r = run_command(kBin + " tokenizer train " + args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, needle), 1) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << args << "\n" << r.output;
  EXPECT_FALSE(fs::exists(out + "/vocab.json")) << args;
}

TEST(TokenizerTrainCli, WritesVocabAndMergesAndASummary) {
  TempDir tmp;
  const std::string out = tmp / "tok";
  const testing::RunResult r = run_command(
      kBin + " tokenizer train --input " + kCorpus + " " + kCorpus + " --vocab-size 700 --out " +
      out + " --special '<|endoftext|>' --min-frequency 3 --threads 2");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("vocabulary 700 tokens"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(std::to_string(2 * read_file(kCorpus).size()) + " bytes"),
            std::string::npos)
      << r.output;
  const BpeTokenizer want = train({kCorpus, kCorpus}, 700, 1, {"<|endoftext|>"}, 3);
  EXPECT_EQ(read_file(out + "/vocab.json"), want.vocab_text());
  EXPECT_EQ(read_file(out + "/merges.txt"), want.merges_text());
  for (const auto& entry : fs::directory_iterator(out)) {
    const std::string name = entry.path().filename().string();
    EXPECT_TRUE(name == "vocab.json" || name == "merges.txt") << name;  // no temporaries left
  }

  const testing::RunResult help = run_command(kBin + " tokenizer train --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_EQ(help.output.rfind("usage: polyhead tokenizer train", 0), 0u) << help.output;
}

TEST(TokenizerTrainCli, ProgressIsRewrittenOnATerminalAndQuietInALog) {
  TempDir tmp;
  const std::string train = kBin + " tokenizer train --input " + kCorpus +
                            " --vocab-size 500 --threads 2 --out " + tmp / "tok";
  // script(1) runs the command on a pseudo-terminal.
  const testing::RunResult tty = run_command("script -qec '" + train + "' /dev/null");
  ASSERT_EQ(tty.exit_code, 0) << tty.output;
  EXPECT_TRUE(std::regex_search(
      tty.output, std::regex("\rtokenizer train: 244/244 merges, [0-9]+ merges/s, [0-9.]+ s")))
      << tty.output;
  const testing::RunResult log = run_command(train);
  ASSERT_EQ(log.exit_code, 0) << log.output;
  EXPECT_EQ(log.output.find("merges/s"), std::string::npos) << log.output;  // under 10 s
  EXPECT_EQ(count_occurrences(log.output, "\n"), 1) << log.output;          // the summary
}

TEST(TokenizerTrainCli, MinFrequencyStopIsReported) {
  TempDir tmp;
  write_file(tmp / "c.txt", "abab abab\n");
  const testing::RunResult r = run_command(kBin + " tokenizer train --input " + tmp / "c.txt" +
                                           " --vocab-size 1000 --out " + tmp / "tok");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("stopped early"), std::string::npos) << r.output;
  EXPECT_EQ(BpeTokenizer::load(tmp / "tok").size(), 256 + 2);  // ab, abab (Ġabab occurs once)
}

TEST(TokenizerTrainCli, BadInput) {
  TempDir tmp;
  const std::string out = tmp / "out";
  const std::string o = " --out " + out;
  write_file(tmp / "empty.txt", "");
  write_file(tmp / "file", "x");
  const std::string in = " --input " + kCorpus;
  expect_bad_input("--vocab-size 300" + o, "tokenizer train: no input files given", out);
  expect_bad_input(
      "--input " + tmp / "nope.txt" + " --vocab-size 300" + o,
      "tokenizer train: input '" + tmp / "nope.txt" + "': cannot open: No such file or directory",
      out);
  expect_bad_input("--input " + tmp.path.string() + " --vocab-size 300" + o,
                   "tokenizer train: input '" + tmp.path.string() + "': not a regular file", out);
  expect_bad_input("--input " + tmp / "empty.txt" + " --vocab-size 300" + o,
                   "tokenizer train: the inputs are empty", out);
  expect_bad_input(in + " --vocab-size 257 --special '<a>' --special '<b>'" + o,
                   "tokenizer train: --vocab-size 257 is smaller than the 256 bytes plus 2 "
                   "special token(s)",
                   out);
  expect_bad_input(in + " --vocab-size 100" + o,
                   "--vocab-size 100 is smaller than the 256 bytes plus 0 special token(s)", out);
  expect_bad_input(in + " --vocab-size 300 --special '<s>' --special '</s>' --special '<s>'" + o,
                   "tokenizer train: special token \"<s>\" is given twice", out);
  expect_bad_input(in + " --vocab-size 300 --special ''" + o,
                   "tokenizer train: special token \"\" is empty", out);
  expect_bad_input(in + " --vocab-size 300 --special x" + o,
                   "tokenizer train: special token \"x\" is a single byte, which is already a "
                   "token",
                   out);
  const std::string newline_token = " --special \"$(printf '<\\n>')\"";  // shown as <\n>
  expect_bad_input(in + " --vocab-size 300" + newline_token + newline_token + o,
                   "special token \"<\\n>\" is given twice", out);
  expect_bad_input(in + o, "tokenizer train: missing --vocab-size N", out);
  expect_bad_input(in + " --vocab-size 300", "tokenizer train: missing --out DIR", out);
  expect_bad_input(in + " --vocab-size 300 --out " + tmp / "file",
                   "tokenizer train: --out '" + tmp / "file" + "' exists and is not a directory",
                   out);
  expect_bad_input(in + " --vocab-size lots" + o,
                   "tokenizer train: --vocab-size expects an integer", out);
  expect_bad_input(in + " --vocab-size 300 --threads 0" + o,
                   "tokenizer train: --threads expects an integer in [1, 1024], got '0'", out);
  expect_bad_input(in + " --vocab-size 300 --min-frequency -1" + o,
                   "tokenizer train: --min-frequency expects an integer", out);
  expect_bad_input(in + " --vocab-size 300 --bogus 1" + o,
                   "tokenizer train: unknown option '--bogus'", out);
  expect_bad_input(in + " --vocab-size 300 extra" + o, "tokenizer train: unexpected argument", out);
}

}  // namespace
}  // namespace ph
