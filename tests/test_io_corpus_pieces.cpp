// Piece counting for BPE training: PieceCounts (io/piece_counts.h) against a std::map, and
// count_corpus_pieces (io/corpus_pieces.h) against pre-tokenizing each file in one go, for tiny
// blocks (every block boundary case) and 1 to 3 threads; its input errors.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "io/config.h"
#include "io/corpus_pieces.h"
#include "io/piece_counts.h"
#include "io/pretokenizer.h"
#include "test_util.h"

namespace ph {
namespace {

using testing::TempDir;
using testing::write_file;

std::map<std::string, uint64_t> as_map(const PieceCounts& c) {
  std::map<std::string, uint64_t> m;
  c.for_each([&](std::string_view piece, uint64_t n) { m[std::string(piece)] += n; });
  return m;
}

TEST(PieceCounts, CountsLikeAMap) {
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> len(0, 20), byte(0, 255), small(0, 3);
  PieceCounts counts, other;
  std::map<std::string, uint64_t> want;
  std::vector<std::string> order;  // the order strings first reach `counts`
  std::set<std::string> in_counts;
  for (int i = 0; i < 20000; ++i) {
    std::string s;
    // Short strings over few bytes repeat often; long ones are mostly distinct.
    const int n = len(rng);
    for (int j = 0; j < n; ++j)
      s.push_back(static_cast<char>(n < 6 ? 'a' + small(rng) : byte(rng)));
    const uint64_t k = static_cast<uint64_t>(1 + small(rng));
    (i % 2 ? counts : other).add(s, k);
    if (i % 2 && in_counts.insert(s).second) order.push_back(s);
    want[s] += k;
  }
  std::vector<std::string> seen;
  counts.for_each([&](std::string_view p, uint64_t) { seen.emplace_back(p); });
  EXPECT_EQ(seen, order);
  counts.add_all(other);
  EXPECT_EQ(as_map(counts), want);
  EXPECT_EQ(counts.size(), want.size());
  EXPECT_EQ(counts.count("zzz-not-there"), 0u);
  const auto& [some, n] = *want.begin();
  EXPECT_EQ(counts.count(some), n);
}

// The pieces of each file pre-tokenized whole.
std::map<std::string, uint64_t> whole_file_pieces(const std::vector<std::string>& texts) {
  std::map<std::string, uint64_t> m;
  for (const std::string& t : texts)
    for_each_gpt2_piece(t, [&](std::string_view p) { ++m[std::string(p)]; });
  return m;
}

// Text made of fragments chosen to sit across block boundaries: newlines before white space
// and before non-space, runs of spaces before a newline, multi-byte letters and spaces
// (U+00E9, U+3000 ideographic space, U+00A0), a letter split from its accent, invalid bytes.
std::string tricky_text(std::mt19937& rng, size_t fragments) {
  static const std::vector<std::string> parts = {"hello",
                                                 " world",
                                                 "\n",
                                                 "\n\n",
                                                 "  \n",
                                                 " \n x",
                                                 "\t",
                                                 "don't",
                                                 "\xC3\xA9t\xC3\xA9",
                                                 "\n\xE3\x80\x80x",
                                                 "\xE3\x80\x80",
                                                 "\xC2\xA0\n",
                                                 "123",
                                                 " 45",
                                                 "?!",
                                                 "\xFF\xFE",
                                                 "\n ",
                                                 "\r\n",
                                                 "\xE6\x97\xA5\xE6\x9C\xAC",
                                                 "e\xCC\x81",
                                                 "   "};
  std::uniform_int_distribution<size_t> pick(0, parts.size() - 1);
  std::string t;
  for (size_t i = 0; i < fragments; ++i) t += parts[pick(rng)];
  return t;
}

TEST(CorpusPieces, SameAsWholeFilesForAnyBlockSizeAndThreadCount) {
  TempDir tmp;
  std::mt19937 rng(17);
  std::vector<std::string> texts = {tricky_text(rng, 3000), tricky_text(rng, 50), "",
                                    tricky_text(rng, 1000)};
  texts.push_back(std::string(5000, 'x'));  // no split point at all: the block must grow
  std::vector<std::string> paths;
  uint64_t bytes = 0;
  for (size_t i = 0; i < texts.size(); ++i) {
    paths.push_back(tmp / ("in" + std::to_string(i) + ".txt"));
    write_file(paths.back(), texts[i]);
    bytes += texts[i].size();
  }
  const auto want = whole_file_pieces(texts);
  uint64_t want_pieces = 0;
  for (const auto& [p, n] : want) want_pieces += n;
  for (const size_t block : {size_t{1}, size_t{7}, size_t{64}, size_t{1000}, size_t{1} << 20}) {
    for (const int threads : {1, 2, 3}) {
      CorpusPieceStats stats;
      const PieceCounts got = count_corpus_pieces(paths, threads, block, "test", &stats);
      EXPECT_EQ(as_map(got), want) << "block " << block << ", " << threads << " threads";
      EXPECT_EQ(stats.bytes, bytes);
      EXPECT_EQ(stats.pieces, want_pieces);
    }
  }
}

TEST(CorpusPieces, PiecesDoNotCrossFiles) {
  TempDir tmp;
  write_file(tmp / "a.txt", "abc");
  write_file(tmp / "b.txt", "def");
  const PieceCounts got =
      count_corpus_pieces({tmp / "a.txt", tmp / "b.txt"}, 2, 1 << 20, "t", nullptr);
  EXPECT_EQ(got.count("abc"), 1u);
  EXPECT_EQ(got.count("def"), 1u);
  EXPECT_EQ(got.count("abcdef"), 0u);
}

TEST(CorpusPieces, InputErrorsNameTheFile) {
  TempDir tmp;
  write_file(tmp / "ok.txt", "fine");
  auto message = [&](const std::vector<std::string>& paths) -> std::string {
    try {
      count_corpus_pieces(paths, 1, 1 << 20, "tokenizer train", nullptr);
    } catch (const InputError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_EQ(message({tmp / "ok.txt", tmp / "missing.txt"}),
            "tokenizer train: input '" + tmp / "missing.txt" +
                "': cannot open: No such file or directory");
  EXPECT_EQ(message({tmp.path.string()}),
            "tokenizer train: input '" + tmp.path.string() + "': not a regular file");
  EXPECT_EQ(message({tmp / "bad\nname"}),
            "tokenizer train: input '" + tmp.path.string() +
                "/bad\\nname': cannot open: No such file or directory");
}

}  // namespace
}  // namespace ph
