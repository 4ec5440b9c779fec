// `polyhead prepare --src FILE --tgt FILE` through the binary: a good run (the pair files hold the
// lines encoded with the tokenizer, split into train and validation, the same for any thread
// count, readable by PairDataset), and every bad input with its one message and exit status 2.
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "io/bpe.h"
#include "io/bpe_trainer.h"
#include "io/pair_dataset.h"
#include "io/pair_file.h"
#include "io/tokenizer.h"
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

const std::vector<std::string> kSource = {"the cat sat on the mat",
                                          "a dog barks",
                                          "where is the station",
                                          "I like green tea",
                                          "it rains today",
                                          "the train is late again",
                                          "we read books in the evening",
                                          "open the window please",
                                          "she writes a letter",
                                          "good night"};
const std::vector<std::string> kTarget = {"die Katze sass auf der Matte",
                                          "ein Hund bellt",
                                          "wo ist der Bahnhof",
                                          "ich mag gruenen Tee",
                                          "es regnet heute",
                                          "der Zug ist wieder spaet",
                                          "wir lesen abends Buecher",
                                          "bitte oeffne das Fenster",
                                          "sie schreibt einen Brief",
                                          "gute Nacht"};

// The lines joined by "\n"; line `crlf` (if any) ends in "\r\n", and the last has no line break.
std::string text_of(const std::vector<std::string>& lines, size_t crlf = SIZE_MAX) {
  std::string s;
  for (size_t i = 0; i < lines.size(); ++i) {
    s += lines[i];
    if (i + 1 < lines.size()) s += i == crlf ? "\r\n" : "\n";
  }
  return s;
}

// A parallel corpus and a small BPE tokenizer with the special tokens, in a temporary directory.
struct Corpus {
  TempDir tmp;
  std::string src = tmp / "train.en", tgt = tmp / "train.de", tok = tmp / "tok";
  Corpus() {
    write_file(src, text_of(kSource, 2));
    write_file(tgt, text_of(kTarget) + "\n");
    write_file(tmp / "all.txt", text_of(kSource) + "\n" + text_of(kTarget));
    BpeTrainOptions o;
    o.vocab_size = 300;
    o.specials = {"<pad>", "<s>", "</s>"};
    train_bpe({tmp / "all.txt"}, o).save(tok);
  }
  std::string prepare(const std::string& extra) const {
    return kBin + " prepare --src " + src + " --tgt " + tgt + " --tokenizer " + tok + " " + extra;
  }
};

// Runs polyhead and expects exit status 2 with exactly `message` as its one error line.
void expect_bad_input(const std::string& cmd, const std::string& message) {
  const testing::RunResult r = run_command(cmd);
  EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error: " + message + "\n"), 1) << cmd << "\n"
                                                                                  << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << cmd << "\n" << r.output;
}

TEST(PreparePairs, WritesTrainAndValidationPairs) {
  Corpus c;
  const std::string out = c.tmp / "out";
  const testing::RunResult r = run_command(c.prepare("--out " + out + " --val-fraction 0.2"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Tokenizer tok = Tokenizer::load(c.tok);
  const PairFile train = PairFile::open(out + "/train.pairs", tok.size());
  const PairFile val = PairFile::open(out + "/val.pairs", tok.size());
  ASSERT_EQ(train.size(), 8u);
  ASSERT_EQ(val.size(), 2u);
  EXPECT_EQ(train.vocab_size(), tok.size());
  uint64_t source_tokens = 0, target_tokens = 0;
  for (size_t i = 0; i < kSource.size(); ++i) {
    const PairFile& f = i < 8 ? train : val;
    const uint64_t k = i < 8 ? i : i - 8;
    std::vector<int32_t> x(f.source_length(k)), y(f.target_length(k));
    f.read_source(k, x.size(), x.data());
    f.read_target(k, y.size(), y.data());
    EXPECT_EQ(x, tok.encode(kSource[i])) << "line " << i + 1;  // no "\r" (line 3 ends in CRLF)
    EXPECT_EQ(y, tok.encode(kTarget[i])) << "line " << i + 1;
    source_tokens += x.size();
    target_tokens += y.size();
  }
  EXPECT_NE(r.output.find("wrote 8 training and 2 validation pairs (" +
                          std::to_string(source_tokens) + " source and " +
                          std::to_string(target_tokens) + " target tokens, uint16 ids) to " + out),
            std::string::npos)
      << r.output;

  // The same files with one thread, and without a line break after the target's last line.
  write_file(c.tgt, text_of(kTarget));
  const std::string out1 = c.tmp / "out1";
  ASSERT_EQ(run_command(c.prepare("--out " + out1 + " --val-fraction 0.2 --threads 1")).exit_code,
            0);
  EXPECT_EQ(read_file(out1 + "/train.pairs"), read_file(out + "/train.pairs"));
  EXPECT_EQ(read_file(out1 + "/val.pairs"), read_file(out + "/val.pairs"));

  // The dataset adds the specials of the config at batch time.
  PairDatasetOptions o;
  o.source_len = 64;  // every pair fits
  o.target_len = 64;
  o.vocab_size = tok.size();
  o.pad = *tok.id_of("<pad>");
  o.bos = *tok.id_of("<s>");
  o.eos = *tok.id_of("</s>");
  o.shuffle = false;
  PairDataset d({out + "/train.pairs"}, o);
  ASSERT_EQ(d.num_pairs(), 8u);
  std::vector<int32_t> source(64), length(1), tokens(64), targets(64);
  d.fill(1, 1, source.data(), length.data(), tokens.data(), targets.data());
  std::vector<int32_t> expected = tok.encode(kSource[1]);
  EXPECT_EQ(length[0], static_cast<int32_t>(expected.size()) + 1);
  expected.push_back(o.eos);
  expected.resize(64, o.pad);
  EXPECT_EQ(source, expected);
  EXPECT_EQ(tokens[0], o.bos);
}

TEST(PreparePairs, ValFractionZeroWritesNoValidationFile) {
  Corpus c;
  const std::string out = c.tmp / "out";
  const testing::RunResult r = run_command(c.prepare("--out " + out + " --val-fraction 0"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("wrote 10 training and 0 validation pairs"), std::string::npos)
      << r.output;
  EXPECT_EQ(PairFile::open(out + "/train.pairs", 300).size(), 10u);
  EXPECT_FALSE(fs::exists(out + "/val.pairs"));
}

TEST(PreparePairs, MisalignedFiles) {
  Corpus c;
  write_file(c.tgt, text_of(std::vector<std::string>(kTarget.begin(), kTarget.end() - 1)));
  expect_bad_input(c.prepare("--out " + (c.tmp / "out")),
                   "prepare: '" + c.src + "' has 10 lines but '" + c.tgt +
                       "' has 9; parallel text needs one sentence per line in both");
  EXPECT_FALSE(fs::exists(c.tmp / "out"));
}

TEST(PreparePairs, BlankLines) {
  Corpus c;
  std::vector<std::string> tgt = kTarget;
  tgt[3] = "";
  write_file(c.tgt, text_of(tgt));
  expect_bad_input(
      c.prepare("--out " + (c.tmp / "out")),
      "prepare: '" + c.tgt + "' line 4 is blank; parallel text needs a sentence on every line");
  std::vector<std::string> src = kSource;
  src[1] = " \t ";
  write_file(c.src, text_of(src));
  expect_bad_input(
      c.prepare("--out " + (c.tmp / "out")),
      "prepare: '" + c.src + "' line 2 is blank; parallel text needs a sentence on every line");
  EXPECT_FALSE(fs::exists(c.tmp / "out"));
  write_file(c.src, "");
  write_file(c.tgt, "");
  expect_bad_input(c.prepare("--out " + (c.tmp / "out")),
                   "prepare: '" + c.src + "' and '" + c.tgt + "' are empty");
}

TEST(PreparePairs, CommandLineMessages) {
  Corpus c;
  const std::string out = " --out " + (c.tmp / "out");
  const std::string tok = " --tokenizer " + c.tok;
  expect_bad_input(kBin + " prepare --src " + c.src + tok + out,
                   "prepare: --src needs --tgt FILE (parallel text is a source and a target file)");
  expect_bad_input(kBin + " prepare --tgt " + c.tgt + tok + out,
                   "prepare: --tgt needs --src FILE (parallel text is a source and a target file)");
  expect_bad_input(c.prepare("--input " + c.src + out),
                   "prepare: --src/--tgt (parallel text) and --input (one stream of text) cannot "
                   "be combined");
  expect_bad_input(c.prepare("--eot none" + out),
                   "prepare: --eot applies to --input only, not to parallel text (--src/--tgt)");
  expect_bad_input(kBin + " prepare --src " + c.src + " --tgt " + c.tgt + out,
                   "prepare: --src/--tgt need --tokenizer T (a BPE tokenizer that also holds the "
                   "special tokens pad, bos and eos)");
  expect_bad_input(c.prepare(""), "prepare: missing --out DIR");
  expect_bad_input(c.prepare("--val-fraction 1" + out),
                   "prepare: --val-fraction must be in [0, 1), got 1");
  expect_bad_input(c.prepare("--val-fraction 0.01" + out),
                   "prepare: 10 pairs with --val-fraction 0.01 leave none for validation (use a "
                   "larger fraction, or --val-fraction 0 for no validation file)");
  expect_bad_input(c.prepare("--val-fraction 0.99" + out),
                   "prepare: 10 pairs with --val-fraction 0.99 leave none for training");
  expect_bad_input(
      kBin + " prepare --src " + (c.tmp / "absent") + " --tgt " + c.tgt + tok + out,
      "prepare: input '" + (c.tmp / "absent") + "': cannot open: No such file or directory");
  EXPECT_FALSE(fs::exists(c.tmp / "out"));
  const testing::RunResult help = run_command(kBin + " prepare --help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.output.find("polyhead prepare --src FILE --tgt FILE --tokenizer T --out DIR"),
            std::string::npos)
      << help.output;
}

}  // namespace
}  // namespace ph
