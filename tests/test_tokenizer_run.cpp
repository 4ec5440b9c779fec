// A BPE tokenizer in a run: `prepare --tokenizer` (documents, the end-of-text token, uint32
// shards), the config's data.tokenizer and special tokens, the tokenizer copied into the run
// directory and carried in checkpoints, `sample` and `inspect` with it, and every bad input of
// these with its one message.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "io/bpe.h"
#include "io/bpe_vocab_files.h"
#include "io/byte_level.h"
#include "io/checkpoint.h"
#include "io/prepare.h"
#include "io/shard.h"
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

// A small byte-level BPE vocabulary: the 256 bytes in GPT-2's order, a few English merges and
// `extra` further tokens that no merge makes, then "<|endoftext|>" (and optionally "<pad>").
struct SmallVocab {
  std::vector<std::string> tokens;
  std::vector<std::pair<int32_t, int32_t>> merges;
};

SmallVocab small_vocab(int extra = 0, bool pad = false) {
  SmallVocab v;
  for (const uint8_t b : gpt2_byte_order()) v.tokens.emplace_back(1, static_cast<char>(b));
  auto id = [&](const std::string& s) {
    for (size_t i = 0; i < v.tokens.size(); ++i)
      if (v.tokens[i] == s) return static_cast<int32_t>(i);
    ADD_FAILURE() << "no token " << s;
    return int32_t{0};
  };
  for (const auto& [a, b] : std::vector<std::pair<std::string, std::string>>{{"t", "h"},
                                                                             {"th", "e"},
                                                                             {" ", "the"},
                                                                             {"i", "n"},
                                                                             {"in", "g"},
                                                                             {" ", "t"},
                                                                             {"e", "r"}}) {
    v.merges.emplace_back(id(a), id(b));
    v.tokens.push_back(a + b);
  }
  for (int i = 0; i < extra; ++i) v.tokens.push_back("\x01unused" + std::to_string(i));
  v.tokens.push_back("<|endoftext|>");
  if (pad) v.tokens.push_back("<pad>");
  return v;
}

// Writes the vocabulary as vocab.json + merges.txt into dir; returns dir.
std::string write_vocab(const std::string& dir, const SmallVocab& v) {
  fs::create_directories(dir);
  write_file(dir + "/vocab.json", gpt2_vocab_json(v.tokens));
  write_file(dir + "/merges.txt", gpt2_merges_txt(v.tokens, v.merges));
  return dir;
}

// The ids of a shard, either layout.
std::vector<int32_t> shard_ids(const std::string& path, int vocab) {
  const Shard s = Shard::open(path, vocab);
  std::vector<int32_t> ids(s.size());
  s.read(0, s.size(), ids.data());
  return ids;
}

std::vector<int32_t> all_ids(const PreparedText& r, int vocab) {
  std::vector<int32_t> ids;
  for (const auto* files : {&r.train_files, &r.val_files})
    for (const std::string& f : *files) {
      const std::vector<int32_t> part = shard_ids(f, vocab);
      ids.insert(ids.end(), part.begin(), part.end());
    }
  return ids;
}

void append(std::vector<int32_t>& out, const std::vector<int32_t>& ids) {
  out.insert(out.end(), ids.begin(), ids.end());
}

TEST(PrepareTokenized, EachFileIsADocumentLedByTheEot) {
  TempDir tmp;
  const Tokenizer tok = Tokenizer::load(write_vocab(tmp / "tok", small_vocab()));
  const int32_t eot = *tok.id_of("<|endoftext|>");
  const std::string a = "the thing in the other thing\n\nis there\n", b = "  then  the end";
  write_file(tmp / "a.txt", a);
  write_file(tmp / "b.txt", b);
  write_file(tmp / "empty.txt", "");
  PrepareOptions o;
  o.val_fraction = 0.25;
  const PreparedText r =
      prepare_tokenized({tmp / "a.txt", tmp / "empty.txt", tmp / "b.txt"}, tmp / "out", tok, o);
  std::vector<int32_t> want = {eot};
  append(want, tok.encode(a));
  want.push_back(eot);
  append(want, tok.encode(b));
  EXPECT_EQ(all_ids(r, tok.size()), want);
  EXPECT_EQ(r.documents, 2u);  // the empty file holds none
  EXPECT_EQ(r.input_bytes, a.size() + b.size());
  EXPECT_EQ(r.val_tokens,
            static_cast<uint64_t>(std::llround(0.25 * static_cast<double>(want.size()))));
  EXPECT_EQ(r.train_files, std::vector<std::string>{tmp / "out/train.bin"});
  EXPECT_EQ(Shard::open(r.train_files[0], tok.size()).width(), TokenWidth::U16);
  // The merges were used (fewer tokens than bytes), and decoding gives the text back.
  EXPECT_LT(want.size(), a.size() + b.size());
  EXPECT_EQ(tok.decode(want.data() + 1, tok.encode(a).size()), a);
  // No spool is left behind.
  for (const auto& e : fs::directory_iterator(tmp / "out"))
    EXPECT_EQ(e.path().extension(), ".bin") << e.path();
  // --eot none: no separators.
  o.eot = "";
  const PreparedText bare = prepare_tokenized({tmp / "a.txt", tmp / "b.txt"}, tmp / "bare", tok, o);
  std::vector<int32_t> plain = tok.encode(a);
  append(plain, tok.encode(b));
  EXPECT_EQ(all_ids(bare, tok.size()), plain);
}

TEST(PrepareTokenized, BlankLinesSeparateDocuments) {
  TempDir tmp;
  const Tokenizer tok = Tokenizer::load(write_vocab(tmp / "tok", small_vocab()));
  const int32_t eot = *tok.id_of("<|endoftext|>");
  write_file(tmp / "a.txt", "\n \nthe first\nstill first\n\n \t\r\n\nthe second\n\nthird");
  PrepareOptions o;
  o.documents = DocSeparator::Blank;
  o.val_fraction = 0.2;
  const PreparedText r = prepare_tokenized({tmp / "a.txt"}, tmp / "out", tok, o);
  std::vector<int32_t> want;
  for (const char* doc : {"the first\nstill first\n", "the second\n", "third"}) {
    want.push_back(eot);
    append(want, tok.encode(doc));
  }
  EXPECT_EQ(r.documents, 3u);
  EXPECT_EQ(all_ids(r, tok.size()), want);
}

TEST(PrepareTokenized, ThreadsAndSegmentsDoNotChangeTheIds) {
  // One document of ~3 MiB is cut into segments at safe split points and encoded on several
  // threads; the ids are those of encoding it whole.
  TempDir tmp;
  const Tokenizer tok = Tokenizer::load(write_vocab(tmp / "tok", small_vocab()));
  std::string text;
  uint64_t x = 12345;
  const char* words[] = {"the", " the", "thing", "\n", "  ", "in", "ing", "\n\n", "é", "其", "7"};
  while (text.size() < (3u << 20)) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    text += words[(x >> 33) % 11];
  }
  write_file(tmp / "big.txt", text);
  std::vector<int32_t> want = {*tok.id_of("<|endoftext|>")};
  append(want, tok.encode(text));
  for (const int threads : {1, 3}) {
    PrepareOptions o;
    o.threads = threads;
    o.max_shard_tokens = 700000;
    const std::string out = tmp / ("out" + std::to_string(threads));
    const PreparedText r = prepare_tokenized({tmp / "big.txt"}, out, tok, o);
    EXPECT_GT(r.train_files.size(), 1u) << threads;
    EXPECT_EQ(all_ids(r, tok.size()), want) << threads;
  }
  for (const std::string name : {"train_000.bin", "train_001.bin", "val.bin"})
    EXPECT_EQ(read_file(tmp / ("out1/" + name)), read_file(tmp / ("out3/" + name))) << name;
}

TEST(PrepareTokenized, VocabulariesPast65536IdsWriteUint32Shards) {
  TempDir tmp;
  const Tokenizer tok = Tokenizer::load(write_vocab(tmp / "tok", small_vocab(70000)));
  ASSERT_EQ(tok.size(), 256 + 7 + 70000 + 1);
  write_file(tmp / "a.txt", "the thing in the other thing, and then some more of the text");
  PrepareOptions o;
  o.val_fraction = 0.3;
  const PreparedText r = prepare_tokenized({tmp / "a.txt"}, tmp / "out", tok, o);
  const Shard s = Shard::open(r.train_files[0], tok.size());
  EXPECT_EQ(s.width(), TokenWidth::U32);
  const std::string bytes = read_file(r.train_files[0]);
  int32_t header[3];
  std::memcpy(header, bytes.data(), sizeof(header));
  EXPECT_EQ(header[0], 20240801);
  EXPECT_EQ(header[1], 7);
  EXPECT_EQ(bytes.size(), 1024 + 4 * static_cast<size_t>(header[2]));
  const std::vector<int32_t> ids = all_ids(r, tok.size());
  EXPECT_EQ(ids.front(), 256 + 7 + 70000);  // the end-of-text token, past 65535
  EXPECT_EQ(tok.decode(ids.data() + 1, ids.size() - 1), read_file(tmp / "a.txt"));
}

// Runs polyhead and expects exit status 2 with `needle` printed exactly once.
void expect_bad_input(const std::string& args, const std::string& needle) {
  const testing::RunResult r = run_command(kBin + " " + args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, needle), 1) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << args << "\n" << r.output;
}

TEST(PrepareTokenized, BadInput) {
  TempDir tmp;
  SmallVocab no_eot = small_vocab();
  no_eot.tokens.pop_back();
  const std::string tok = write_vocab(tmp / "tok", no_eot);
  write_file(tmp / "a.txt", "the thing in the other thing\n");
  expect_bad_input(
      "prepare --input " + tmp / "a.txt" + " --out " + tmp / "out" + " --tokenizer " + tok,
      "prepare: the tokenizer has no end-of-text token \"<|endoftext|>\" (name one "
      "with --eot TOKEN, or --eot none)");
  EXPECT_FALSE(fs::exists(tmp / "out"));
  expect_bad_input(
      "prepare --input " + tmp / "a.txt" + " --out " + tmp / "out" + " --doc-separator blank",
      "prepare: --doc-separator needs --tokenizer");
  expect_bad_input("prepare --input " + tmp / "a.txt" + " --out " + tmp / "out" + " --tokenizer " +
                       tok + " --eot none --doc-separator lines",
                   "prepare: --doc-separator expects file or blank, got 'lines'");
  expect_bad_input("prepare --input " + tmp / "a.txt" + " --out " + tmp / "out" + " --tokenizer " +
                       tmp / "missing",
                   "tokenizer '" + tmp / "missing" + "': no such file or directory");
  write_file(tmp / "blank.txt", "\n  \n\t\n");
  expect_bad_input("prepare --input " + tmp / "blank.txt" + " --out " + tmp / "out" +
                       " --tokenizer " + tok + " --eot none --doc-separator blank",
                   "prepare: the inputs contain no text");
  // A working call prints what it wrote.
  const testing::RunResult ok =
      run_command(kBin + " prepare --input " + tmp / "a.txt" + " --out " + tmp / "out" +
                  " --tokenizer " + tok + " --eot none --val-fraction 0.3");
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  EXPECT_NE(ok.output.find("(uint16 shards)"), std::string::npos) << ok.output;
  EXPECT_NE(ok.output.find("1 documents"), std::string::npos) << ok.output;
}

TEST(Tokenizer, KindsAndChecks) {
  TempDir tmp;
  const Tokenizer bytes;
  EXPECT_EQ(bytes.kind(), "bytes");
  EXPECT_EQ(bytes.size(), 256);
  EXPECT_FALSE(bytes.id_of("a"));
  EXPECT_EQ(bytes.decode(bytes.encode("héllo").data(), 6), "héllo");
  const Tokenizer bpe = Tokenizer::load(write_vocab(tmp / "tok", small_vocab(0, true)));
  EXPECT_EQ(bpe.kind(), "bpe");
  EXPECT_EQ(bpe.size(), 256 + 7 + 2);
  EXPECT_EQ(bpe.describe(), "bpe (vocab.json + merges.txt), 265 tokens");
  const Tokenizer stored =
      Tokenizer::from_stored("bpe", bpe.vocab_text(), bpe.merges_text(), "checkpoint X");
  EXPECT_TRUE(stored.same_as(bpe));
  EXPECT_FALSE(stored.same_as(bytes));
  EXPECT_TRUE(Tokenizer::from_stored("bytes", "", "", "c").same_as(bytes));
  try {
    Tokenizer::from_stored("sentencepiece", "", "", "checkpoint X");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "checkpoint X: unknown tokenizer kind 'sentencepiece' (expected bytes, bpe or "
                 "tiktoken)");
  }
  Config cfg;
  cfg.data.train = {"t.bin"};
  cfg.data.tokenizer = tmp / "tok";
  cfg.model.vocab_size = 265;
  cfg.data.eot_token = "<|endoftext|>";
  cfg.data.pad_token = "<pad>";
  const std::vector<SpecialToken> sp = check_tokenizer(cfg, bpe, "data.tokenizer 'T'");
  ASSERT_EQ(sp.size(), 2u);
  EXPECT_EQ(sp[0].key, "data.eot_token");
  EXPECT_EQ(sp[0].id, 263);
  EXPECT_EQ(sp[1].id, 264);
  cfg.model.vocab_size = 264;
  try {
    check_tokenizer(cfg, bpe, "data.tokenizer 'T'");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(),
                 "data.tokenizer 'T' has 265 tokens, more than model.vocab_size 264 (set "
                 "model.vocab_size to at least 265)");
  }
  cfg.model.vocab_size = 300;
  cfg.data.mask_token = "[MASK]";
  try {
    check_tokenizer(cfg, bpe, "data.tokenizer 'T'");
    ADD_FAILURE() << "no error";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "data.mask_token \"[MASK]\" is not a token of data.tokenizer 'T'");
  }
}

// A tiny model trained on shards of the small tokenizer: everything that carries the tokenizer.
class TokenizerRun : public ::testing::Test {
 protected:
  void SetUp() override {
    tok_ = write_vocab(tmp_ / "tok", small_vocab());
    std::string text;
    for (int i = 0; i < 300; ++i)
      text += "the thing in the other thing is there " + std::to_string(i % 7) + "\n\n";
    write_file(tmp_ / "corpus.txt", text);
    const testing::RunResult r =
        run_command(kBin + " prepare --input " + tmp_ / "corpus.txt" + " --out " + tmp_ / "data" +
                    " --tokenizer " + tok_ + " --doc-separator blank");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }

  std::string config(const std::string& run, const std::string& extra = "") const {
    const std::string path = tmp_ / (run + ".yaml");
    write_file(path,
               "model: {vocab_size: 272, n_layers: 1, d_model: 16, n_heads: 2, seq_len: 16}\n"
               "train: {max_steps: 4, micro_batch: 2, eval_interval: 0, eval_batches: 1}\n"
               "optim: {warmup_steps: 1}\n"
               "data: {train: [" +
                   tmp_ / "data/train.bin" + "], val: [" + tmp_ / "data/val.bin" +
                   "], tokenizer: " + tok_ + ", eot_token: \"<|endoftext|>\"}\n" +
                   "sample: {count: 1, max_tokens: 8, prompt: \"the thing\"}\n" +
                   "run: {dir: " + tmp_ / run + "}\n" + extra);
    return path;
  }

  TempDir tmp_;
  std::string tok_;
};

TEST_F(TokenizerRun, TheTokenizerTravelsWithTheRun) {
  const testing::RunResult r = run_command(kBin + " train " + config("run"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("--- sample 0 ---\nthe thing"), std::string::npos) << r.output;
  // A copy of the tokenizer in the run directory, and the tokenizer in the checkpoint.
  EXPECT_EQ(read_file(tmp_ / "run/tokenizer/vocab.json"), read_file(tok_ + "/vocab.json"));
  EXPECT_EQ(read_file(tmp_ / "run/tokenizer/merges.txt"), read_file(tok_ + "/merges.txt"));
  const std::string ckpt = tmp_ / "run/checkpoints/step_00000004.h5";
  const CheckpointMeta meta = read_checkpoint_meta(ckpt, MPI_COMM_SELF);
  EXPECT_EQ(meta.tokenizer, "bpe");
  EXPECT_EQ(meta.tokenizer_vocab, read_file(tok_ + "/vocab.json"));
  EXPECT_EQ(meta.tokenizer_merges, read_file(tok_ + "/merges.txt"));
  // inspect shows it; sample needs nothing but the checkpoint (the tokenizer files are gone).
  fs::remove_all(tok_);
  fs::remove_all(tmp_ / "run/tokenizer");
  const testing::RunResult ins = run_command(kBin + " inspect " + ckpt);
  EXPECT_EQ(ins.exit_code, 0) << ins.output;
  EXPECT_NE(ins.output.find("tokenizer         bpe (vocab.json "), std::string::npos) << ins.output;
  EXPECT_NE(ins.output.find("tokenizer: bpe (vocab.json + merges.txt), 264 tokens\n"),
            std::string::npos)
      << ins.output;
  EXPECT_NE(ins.output.find("data.eot_token   <|endoftext|> = 263\n"), std::string::npos)
      << ins.output;
  const testing::RunResult s =
      run_command(kBin + " sample --checkpoint " + ckpt + " --prompt 'the thing' --max-tokens 6");
  EXPECT_EQ(s.exit_code, 0) << s.output;
  EXPECT_EQ(s.output.rfind("the thing", 0), 0u) << s.output;
  // The prompt was encoded with the merges: a byte-level model would print raw ids instead.
  EXPECT_EQ(s.output.find('<'), s.output.find("<|endoftext|>")) << s.output;
}

TEST_F(TokenizerRun, BadInputNamesTheProblem) {
  expect_bad_input("train " + config("a") + " model.vocab_size=200",
                   "data.tokenizer '" + tok_ +
                       "' has 264 tokens, more than model.vocab_size 200 (set model.vocab_size to "
                       "at least 264)");
  expect_bad_input("train " + config("b") + " data.pad_token='<pad>'",
                   "data.pad_token \"<pad>\" is not a token of data.tokenizer '" + tok_ + "'");
  expect_bad_input("train " + config("c") + " data.tokenizer=" + tmp_ / "nowhere",
                   "tokenizer '" + tmp_ / "nowhere" + "': no such file or directory");
  for (const char* run : {"a", "b", "c"}) EXPECT_FALSE(fs::exists(tmp_ / run)) << run;
  // Resuming a run with another tokenizer (the same size, other merges) is refused.
  ASSERT_EQ(run_command(kBin + " train " + config("d")).exit_code, 0);
  SmallVocab other = small_vocab();
  std::swap(other.merges[5], other.merges[6]);  // " t" and "er" trade ranks and ids
  std::swap(other.tokens[261], other.tokens[262]);
  const std::string tok2 = write_vocab(tmp_ / "tok2", other);
  expect_bad_input("train " + config("d") + " train.max_steps=6 data.tokenizer=" + tok2,
                   "was trained with another tokenizer: it holds bpe (vocab.json + merges.txt), "
                   "264 tokens, data.tokenizer '" +
                       tok2 + "' is bpe (vocab.json + merges.txt), 264 tokens");
}

}  // namespace
}  // namespace ph
