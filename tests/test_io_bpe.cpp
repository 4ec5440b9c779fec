// Byte-level BPE (io/bpe.h): the fast encoder against naive BPE on random text with small
// vocabularies in both formats, parallel encoding, decoding, the files, and every message for
// broken files (each written into a temporary directory).
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "bpe_test_vocab.h"
#include "io/bpe.h"
#include "io/config.h"
#include "io/pretokenizer.h"
#include "parallel/errors.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::TempDir;

const std::string kAlphabet = "abc de\n!1\xc3\xa9";

// Random text: the vocabulary's alphabet in random runs (long runs of one letter make pieces
// of hundreds of bytes), white space before words, and now and then any byte at all.
std::string random_text(std::mt19937& rng, size_t bytes) {
  std::uniform_int_distribution<int> kind(0, 99), byte(0, 255), len(1, 12);
  std::uniform_int_distribution<size_t> letter(0, kAlphabet.size() - 1);
  std::string s;
  while (s.size() < bytes) {
    const int k = kind(rng);
    if (k < 2) {
      s.append(static_cast<size_t>(len(rng)) * 40, "abc"[k]);
    } else if (k < 5) {
      s.push_back(static_cast<char>(byte(rng)));
    } else if (k < 8) {
      s += "\n\nTo";
    } else {
      for (int i = len(rng); i > 0; --i) s.push_back(kAlphabet[letter(rng)]);
    }
  }
  return s;
}

std::vector<int> as_ints(const std::vector<int32_t>& v) {
  return {v.begin(), v.end()};
}

TEST(Bpe, TiktokenRanksMatchANaiveBpe) {
  std::mt19937 rng(1);
  const testing::TestVocab v = testing::random_vocab(rng, 300, kAlphabet);
  const BpeTokenizer tok =
      BpeTokenizer::from_text(BpeFormat::TiktokenRanks, testing::tiktoken_text(v.tokens), "", "t");
  EXPECT_EQ(tok.size(), 256 + 300 + 1);
  std::map<std::string, int> ranks;
  for (size_t id = 0; id < v.tokens.size(); ++id) ranks.emplace(v.tokens[id], static_cast<int>(id));
  for (int trial = 0; trial < 40; ++trial) {
    const std::string text = random_text(rng, 2000);
    std::vector<int> expected;
    for_each_gpt2_piece(text, [&](std::string_view p) {
      const auto ids = testing::naive_tiktoken_bpe(ranks, std::string(p));
      expected.insert(expected.end(), ids.begin(), ids.end());
    });
    ASSERT_EQ(as_ints(tok.encode(text)), expected) << "trial " << trial;
  }
}

TEST(Bpe, VocabMergesMatchANaiveBpe) {
  std::mt19937 rng(2);
  const testing::TestVocab v = testing::random_vocab(rng, 300, kAlphabet);
  const BpeTokenizer tok = BpeTokenizer::from_text(
      BpeFormat::VocabMerges, testing::vocab_json_text(testing::byte_level_keys(v.tokens)),
      testing::merges_text(v), "d");
  EXPECT_EQ(tok.size(), 256 + 300);
  const auto rank = testing::merge_ranks(v);
  for (int trial = 0; trial < 40; ++trial) {
    const std::string text = random_text(rng, 2000);
    std::vector<int> expected;
    for_each_gpt2_piece(text, [&](std::string_view p) {
      const auto ids = testing::naive_merges_bpe(rank, std::string(p));
      expected.insert(expected.end(), ids.begin(), ids.end());
    });
    ASSERT_EQ(as_ints(tok.encode(text)), expected) << "trial " << trial;
  }
}

TEST(Bpe, TheTwoFormatsDifferWhereTheirRulesDo) {
  // Tokens "ab", "bc", "abc" made by the merges (a b), (b c), (ab c). tiktoken's rule also
  // merges (a bc) since "abc" is a token; the merge list does not.
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  tokens.insert(tokens.end(), {"bc", "ab", "abc"});  // ranks 256, 257, 258
  testing::TestVocab v{tokens, {{'b', 'c'}, {'a', 'b'}, {257, 'c'}}};
  const BpeTokenizer ranks =
      BpeTokenizer::from_text(BpeFormat::TiktokenRanks, testing::tiktoken_text(tokens), "", "t");
  const BpeTokenizer merges = BpeTokenizer::from_text(
      BpeFormat::VocabMerges, testing::vocab_json_text(testing::byte_level_keys(tokens)),
      testing::merges_text(v), "d");
  EXPECT_EQ(ranks.encode("abc"), (std::vector<int32_t>{258}));  // the whole piece is a token
  EXPECT_EQ(merges.encode("abc"), (std::vector<int32_t>{'a', 256}));
  EXPECT_EQ(ranks.encode("abcd"), (std::vector<int32_t>{258, 'd'}));  // (a bc) merges
  EXPECT_EQ(merges.encode("abcd"), (std::vector<int32_t>{'a', 256, 'd'}));
}

TEST(Bpe, ThreadCountDoesNotChangeTheIds) {
  std::mt19937 rng(3);
  const testing::TestVocab v = testing::random_vocab(rng, 200, kAlphabet);
  const BpeTokenizer tok =
      BpeTokenizer::from_text(BpeFormat::TiktokenRanks, testing::tiktoken_text(v.tokens), "", "t");
  const std::string text = random_text(rng, size_t{5} << 20);  // several chunks per thread
  const std::vector<int32_t> one = tok.encode(text, 1);
  EXPECT_EQ(tok.encode(text, 2), one);
  EXPECT_EQ(tok.encode(text, 3), one);
  std::vector<int32_t> appended{7};
  tok.encode_into(text, appended);
  ASSERT_EQ(appended.size(), one.size() + 1);
  EXPECT_TRUE(std::equal(one.begin(), one.end(), appended.begin() + 1));
}

TEST(Bpe, DecodeInvertsEncodeOnAnyBytes) {
  std::mt19937 rng(4);
  const testing::TestVocab v = testing::random_vocab(rng, 100, kAlphabet);
  const BpeTokenizer ranks =
      BpeTokenizer::from_text(BpeFormat::TiktokenRanks, testing::tiktoken_text(v.tokens), "", "t");
  const BpeTokenizer merges = BpeTokenizer::from_text(
      BpeFormat::VocabMerges, testing::vocab_json_text(testing::byte_level_keys(v.tokens)),
      testing::merges_text(v), "d");
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 50; ++trial) {
    std::string text = random_text(rng, 500);
    for (int i = 0; i < 200; ++i) text.push_back(static_cast<char>(byte(rng)));
    for (const BpeTokenizer* tok : {&ranks, &merges}) {
      const std::vector<int32_t> ids = tok->encode(text);
      EXPECT_EQ(tok->decode(ids.data(), ids.size()), text);
    }
  }
}

TEST(Bpe, SpecialTokensAndUnknownIds) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  const BpeTokenizer tok =
      BpeTokenizer::from_text(BpeFormat::TiktokenRanks, testing::tiktoken_text(tokens), "", "t");
  ASSERT_EQ(tok.size(), 257);
  EXPECT_EQ(tok.id_of("<|endoftext|>"), 256);
  EXPECT_EQ(tok.id_of("a"), 'a');
  EXPECT_EQ(tok.id_of("ab"), std::nullopt);
  EXPECT_EQ(tok.token_bytes(256), "<|endoftext|>");
  // The text of a special token encodes as ordinary text.
  EXPECT_EQ(tok.encode("<|endoftext|>").size(), 13u);
  const int32_t ids[] = {'h', 256, 257, -1, 'i'};
  EXPECT_EQ(tok.decode(ids, 5), "h<|endoftext|><257><-1>i");
}

TEST(Bpe, FilesRoundTripByteForByte) {
  std::mt19937 rng(5);
  const testing::TestVocab v = testing::random_vocab(rng, 50, kAlphabet);
  TempDir dir;
  const std::string ranks_text = testing::tiktoken_text(v.tokens);
  const std::string vocab = testing::vocab_json_text(testing::byte_level_keys(v.tokens));
  const std::string merges = testing::merges_text(v);
  testing::write_file(dir / "r.tiktoken", ranks_text);
  std::filesystem::create_directories(dir / "d");
  testing::write_file(dir / "d/vocab.json", vocab);
  testing::write_file(dir / "d/merges.txt", merges);
  const BpeTokenizer r = BpeTokenizer::load(dir / "r.tiktoken");
  const BpeTokenizer d = BpeTokenizer::load(dir / "d");
  EXPECT_EQ(r.format(), BpeFormat::TiktokenRanks);
  EXPECT_EQ(d.format(), BpeFormat::VocabMerges);
  EXPECT_EQ(r.vocab_text(), ranks_text);
  EXPECT_EQ(r.merges_text(), "");
  EXPECT_EQ(d.vocab_text(), vocab);
  EXPECT_EQ(d.merges_text(), merges);
  r.save(dir / "out/r");
  d.save(dir / "out/d");
  EXPECT_EQ(testing::read_file(dir / "out/r/gpt2.tiktoken"), ranks_text);
  EXPECT_EQ(testing::read_file(dir / "out/d/vocab.json"), vocab);
  EXPECT_EQ(testing::read_file(dir / "out/d/merges.txt"), merges);
  const std::string text = random_text(rng, 3000);
  EXPECT_EQ(BpeTokenizer::load(dir / "out/d").encode(text), d.encode(text));
  EXPECT_EQ(BpeTokenizer::load(dir / "out/r/gpt2.tiktoken").encode(text), r.encode(text));
}

TEST(Bpe, SaveFailureIsAnIoError) {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  const BpeTokenizer tok =
      BpeTokenizer::from_text(BpeFormat::TiktokenRanks, testing::tiktoken_text(tokens), "", "t");
  TempDir dir;
  testing::write_file(dir / "file", "x");
  EXPECT_THROW(tok.save(dir / "file/sub"), IoError);
  std::filesystem::create_directories(dir / "d/gpt2.tiktoken");  // a directory in the way
  EXPECT_THROW(tok.save(dir / "d"), IoError);
}

// ---------------------------------------------------------------------------------------
// Messages for broken files

std::string load_error(const std::string& path) {
  try {
    BpeTokenizer::load(path);
  } catch (const InputError& e) {
    return e.what();
  }
  return "(loaded)";
}

struct BrokenDir {
  TempDir tmp;
  std::vector<std::string> keys;  // vocab.json keys in id order (line = id + 2)
  std::string merges = "#version: 0.2\n\xc4\xa0 t\n";  // "Ġ t": line 2
  BrokenDir() {
    std::vector<std::string> tokens;
    for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
    tokens.emplace_back(" t");
    keys = testing::byte_level_keys(tokens);
  }
  std::string path() const { return tmp / "tok"; }
  std::string write(const std::string& vocab) const { return write(vocab, merges); }
  std::string write(const std::string& vocab, const std::string& m) const {
    std::filesystem::create_directories(path());
    testing::write_file(path() + "/vocab.json", vocab);
    testing::write_file(path() + "/merges.txt", m);
    return path();
  }
  std::string vocab() const { return testing::vocab_json_text(keys); }
};

TEST(BpeErrors, MissingFiles) {
  TempDir tmp;
  EXPECT_EQ(load_error(tmp / "none"),
            "tokenizer '" + (tmp / "none") + "': no such file or directory");
  std::filesystem::create_directories(tmp / "d");
  testing::write_file(tmp / "d/vocab.json", "{}");
  EXPECT_EQ(load_error(tmp / "d"), "tokenizer '" + (tmp / "d") +
                                       "': a directory needs vocab.json and merges.txt; "
                                       "merges.txt is missing");
}

TEST(BpeErrors, VocabJson) {
  BrokenDir d;
  const std::string where = "tokenizer '" + d.path() + "/vocab.json' line ";
  EXPECT_EQ(load_error(d.write(d.vocab())), "(loaded)");
  std::string v = d.vocab();
  // Syntax: the key of id 5 (byte 5, "\u0105") is on line 7.
  std::string broken = v;
  broken.replace(broken.find("\": 5,"), 5, "\" 5,");
  EXPECT_EQ(load_error(d.write(broken)), where + "7: expected ':' after \"\u0105\", found '5'");
  EXPECT_EQ(load_error(d.write(v.substr(0, v.size() - 3))),
            where +
                "258: expected ',' or '}' after the value of \"\xc4\xa0t\", found the end of "
                "the file");
  EXPECT_EQ(load_error(d.write("[]")), where + "1: expected '{' (a JSON object), found '['");
  // A token twice; an id twice.
  EXPECT_EQ(
      load_error(d.write(v.substr(0, v.size() - 3) + ",\n  \"a\": 300\n}\n")),
      where + "259: token \"a\" appears twice (first on line " + std::to_string('a' + 2) + ")");
  EXPECT_EQ(load_error(d.write(v.substr(0, v.size() - 3) + ",\n  \"<x>\": 3\n}\n")),
            where + "259: id 3 of token \"<x>\" is already token \"\u0103\"");
  for (const char* bad : {"-1", "1.5", "2147483648", "\"7\"", "1e3"}) {
    EXPECT_EQ(load_error(d.write(v.substr(0, v.size() - 3) + ",\n  \"<x>\": " + bad + "\n}\n")),
              where + "259: id of token \"<x>\" must be an integer in [0, 2^31)")
        << bad;
  }
  // A gap in the ids; a byte without a token.
  EXPECT_EQ(load_error(d.write(v.substr(0, v.size() - 3) + ",\n  \"<x>\": 258\n}\n")),
            "tokenizer '" + d.path() +
                "/vocab.json': id 257 has no token (ids must be 0, 1, 2, "
                "... up to the largest)");
  BrokenDir no_space;
  no_space.keys[32] = "<space>";  // byte 0x20's symbol "Ġ" is missing
  EXPECT_EQ(load_error(no_space.write(no_space.vocab())),
            "tokenizer '" + no_space.path() +
                "/vocab.json': byte 32 (its symbol \"\xc4\xa0\") has "
                "no token");
}

TEST(BpeErrors, MergesTxt) {
  BrokenDir d;
  const std::string where = "tokenizer '" + d.path() + "/merges.txt' line ";
  const std::string v = d.vocab();
  for (const char* bad : {"\xc4\xa0t", "\xc4\xa0  t", "a b c", " t", ""}) {
    EXPECT_EQ(load_error(d.write(v, "#version: 0.2\n" + std::string(bad) + "\n")),
              where + "2: expected two tokens separated by one space, got \"" + bad + "\"")
        << bad;
  }
  EXPECT_EQ(load_error(d.write(v, "\xc4\xa0 t\nzz t\n")), where + "2: \"zz\" is not in vocab.json");
  EXPECT_EQ(load_error(d.write(v, "\xc4\xa0 t\na zz\n")), where + "2: \"zz\" is not in vocab.json");
  EXPECT_EQ(load_error(d.write(v, "#version: 0.2\n\xc4\xa0 t\na b\n")),
            where + "3: the merge \"a b\" makes \"ab\", which is not in vocab.json");
  EXPECT_EQ(load_error(d.write(v, "#version: 0.2\n\xc4\xa0 t\n\xc4\xa0 t\n")),
            where + "3: merge \"\xc4\xa0 t\" appears twice (first on line 2)");
  // "#version" is a header only on the first line.
  EXPECT_EQ(load_error(d.write(v, "\xc4\xa0 t\n#version: 0.2\n")),
            where + "2: \"#version:\" is not in vocab.json");
}

TEST(BpeErrors, TiktokenRanks) {
  TempDir tmp;
  const std::string path = tmp / "r.tiktoken";
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) tokens.emplace_back(1, static_cast<char>(b));
  const std::string good = testing::tiktoken_text(tokens);
  const std::string where = "tokenizer '" + path + "' line ";
  const auto with = [&](const std::string& text) {
    testing::write_file(path, text);
    return load_error(path);
  };
  EXPECT_EQ(with(good), "(loaded)");
  EXPECT_EQ(with(good + "YWI=\n"), where + "257: expected \"base64 rank\", got \"YWI=\"");
  EXPECT_EQ(with(good + "YW*= 256\n"), where + "257: expected \"base64 rank\", got \"YW*= 256\"");
  EXPECT_EQ(with(good + "YWI 256\n"), where + "257: expected \"base64 rank\", got \"YWI 256\"");
  EXPECT_EQ(with(good + "YWI= x\n"), where + "257: expected \"base64 rank\", got \"YWI= x\"");
  EXPECT_EQ(with(good + "YWI= 300\n"),
            where + "257: rank 300 is not the line's index 256 (ranks must be 0, 1, 2, ...)");
  EXPECT_EQ(with(good + "YQ== 256\n"),
            where + "257: token \"YQ==\" (bytes \"a\") appears twice (first on line 98)");
  EXPECT_EQ(with("YWI= 0\n"), "tokenizer '" + path + "': byte 0 has no rank");
}

}  // namespace
}  // namespace ph
