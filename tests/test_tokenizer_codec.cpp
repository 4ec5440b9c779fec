// `polyhead tokenizer encode` and `decode` (trainer/cli_tokenizer_codec.cpp): round trips of any
// bytes in both tokenizer formats and with any thread count, uint32 shards for vocabularies
// past 65,536 tokens, the summary line, help, and one clear message (exit 2) for bad input.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>

#include "bpe_test_vocab.h"
#include "io/shard.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::read_file;
using testing::run_command;
using testing::TempDir;
using testing::write_file;

const std::string kBin = testing::polyhead_binary();

std::string random_bytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> kind(0, 9), byte(0, 255);
  const std::string words[] = {"the", " cat", " sat", "\n\n", "  ", "\t", "中文", "!?", "42"};
  std::string s;
  while (s.size() < n) {
    if (kind(rng) < 2) {
      s.push_back(static_cast<char>(byte(rng)));
    } else {
      s += words[static_cast<size_t>(byte(rng)) % 9];
    }
  }
  return s;
}

struct Tokenizers {
  TempDir tmp;
  std::string ranks = tmp / "small.tiktoken";
  std::string dir = tmp / "small";
  Tokenizers() {
    std::mt19937 rng(9);
    const testing::TestVocab v = testing::random_vocab(rng, 200, "the cat sat\n");
    write_file(ranks, testing::tiktoken_text(v.tokens));
    std::filesystem::create_directories(dir);
    write_file(dir + "/vocab.json", testing::vocab_json_text(testing::byte_level_keys(v.tokens)));
    write_file(dir + "/merges.txt", testing::merges_text(v));
  }
};

int32_t header_int(const std::string& shard, int i) {
  int32_t v;
  std::memcpy(&v, shard.data() + 4 * i, 4);
  return v;
}

TEST(TokenizerCodec, EncodeDecodeRoundTripsAnyBytes) {
  Tokenizers t;
  const std::string text = random_bytes(3 << 20, 1);  // parallel chunks on 2 threads
  write_file(t.tmp / "in.txt", text);
  for (const std::string& tok : {t.ranks, t.dir}) {
    std::string first;
    for (const char* threads : {"1", "2"}) {
      const auto enc = run_command(kBin + " tokenizer encode --tokenizer " + tok + " --input " +
                                   (t.tmp / "in.txt") + " --out " + (t.tmp / "out.bin") +
                                   " --threads " + threads);
      ASSERT_EQ(enc.exit_code, 0) << enc.output;
      EXPECT_NE(enc.output.find(std::to_string(text.size()) + " bytes -> "), std::string::npos)
          << enc.output;
      EXPECT_NE(enc.output.find(" MB/s"), std::string::npos) << enc.output;
      const std::string shard = read_file(t.tmp / "out.bin");
      ASSERT_GE(shard.size(), kShardHeaderBytes);
      EXPECT_EQ(header_int(shard, 0), kShardMagic);
      EXPECT_LT(header_int(shard, 2), static_cast<int32_t>(text.size()));
      if (first.empty()) first = shard;
      EXPECT_TRUE(shard == first) << "the shard depends on --threads";
      const auto dec = run_command(kBin + " tokenizer decode --tokenizer " + tok + " --input " +
                                   (t.tmp / "out.bin") + " > " + (t.tmp / "back.txt"));
      ASSERT_EQ(dec.exit_code, 0) << dec.output;
      EXPECT_TRUE(read_file(t.tmp / "back.txt") == text);
    }
  }
}

TEST(TokenizerCodec, LargeVocabulariesWriteUint32Shards) {
  TempDir tmp;
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  for (int a = 0; a < 256; ++a) {
    for (int b = 0; b < 256; ++b) tokens.push_back({static_cast<char>(a), static_cast<char>(b)});
  }
  write_file(tmp / "big.tiktoken", testing::tiktoken_text(tokens));  // 65,793 ids
  const std::string text = random_bytes(10000, 2);
  write_file(tmp / "in.txt", text);
  const auto enc = run_command(kBin + " tokenizer encode --tokenizer " + (tmp / "big.tiktoken") +
                               " --input " + (tmp / "in.txt") + " --out " + (tmp / "out.bin"));
  ASSERT_EQ(enc.exit_code, 0) << enc.output;
  const std::string shard = read_file(tmp / "out.bin");
  EXPECT_EQ(header_int(shard, 0), kShardMagicU32);
  EXPECT_EQ(shard.size(), kShardHeaderBytes + 4 * static_cast<size_t>(header_int(shard, 2)));
  const auto dec = run_command(kBin + " tokenizer decode --tokenizer " + (tmp / "big.tiktoken") +
                               " --input " + (tmp / "out.bin") + " > " + (tmp / "back.txt"));
  ASSERT_EQ(dec.exit_code, 0) << dec.output;
  EXPECT_TRUE(read_file(tmp / "back.txt") == text);
}

TEST(TokenizerCodec, Help) {
  for (const char* cmd : {"encode", "decode"}) {
    const auto r = run_command(kBin + " tokenizer " + cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    EXPECT_NE(r.output.find(std::string("usage: polyhead tokenizer ") + cmd), std::string::npos)
        << r.output;
  }
}

TEST(TokenizerCodec, BadInputIsOneMessageAndExitTwo) {
  Tokenizers t;
  write_file(t.tmp / "in.txt", "hello");
  const std::string in = t.tmp / "in.txt", out = t.tmp / "out.bin";
  const std::string tok = " --tokenizer " + t.ranks;
  const struct {
    std::string args, message;
  } cases[] = {
      {"encode --input " + in + " --out " + out,
       "tokenizer encode: --tokenizer T is required (see 'polyhead tokenizer encode --help')"},
      {"encode" + tok + " --out " + out, "tokenizer encode: --input FILE is required"},
      {"encode" + tok + " --input " + in, "tokenizer encode: --out SHARD.bin is required"},
      {"encode" + tok + " --input " + in + " --out " + out + " --threads 0",
       "tokenizer encode: --threads expects an integer in [1, 1024], got '0'"},
      {"encode" + tok + " --input " + in + " --out " + out + " --bogus 1",
       "tokenizer encode: unknown option '--bogus'"},
      {"encode" + tok + " --input " + in + " --out " + out + " extra",
       "tokenizer encode: unexpected argument 'extra'"},
      {"encode" + tok + " --input " + (t.tmp / "none.txt") + " --out " + out,
       "tokenizer encode: input '" + (t.tmp / "none.txt") + "': cannot open: No such file"},
      {"encode" + tok + " --input " + t.tmp.path.string() + " --out " + out,
       "tokenizer encode: input '" + t.tmp.path.string() + "': not a regular file"},
      {"encode --tokenizer " + (t.tmp / "none") + " --input " + in + " --out " + out,
       "tokenizer '" + (t.tmp / "none") + "': no such file or directory"},
      {"decode" + tok, "tokenizer decode: --input SHARD.bin is required"},
      {"decode" + tok + " --input " + in, "data shard '" + in + "': file is 5 bytes"},
  };
  for (const auto& c : cases) {
    const auto r = run_command(kBin + " tokenizer " + c.args);
    EXPECT_EQ(r.exit_code, 2) << c.args << "\n" << r.output;
    EXPECT_NE(r.output.find(c.message), std::string::npos) << c.args << "\n" << r.output;
    EXPECT_EQ(testing::count_occurrences(r.output, "\n"), 1) << c.args << "\n" << r.output;
  }
  // An id past the tokenizer's vocabulary.
  const int32_t ids[] = {'h', 300000};
  write_token_shard(out, ids, 2, 1 << 20);
  const auto r = run_command(kBin + " tokenizer decode" + tok + " --input " + out);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("token id 300000 at position 1 is >= vocab_size"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ph
