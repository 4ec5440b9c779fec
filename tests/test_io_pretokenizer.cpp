// GPT-2's pre-tokenization (io/pretokenizer.h) and the code point classes it uses
// (io/unicode_classes.h): splits written out by hand for the tricky cases, and the properties
// that parallel encoding relies on, on random text.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "io/pretokenizer.h"
#include "io/unicode_classes.h"

namespace ph {
namespace {

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  for_each_gpt2_piece(text, [&](std::string_view p) { out.emplace_back(p); });
  return out;
}

using P = std::vector<std::string>;

TEST(Pretokenizer, WordsTakeTheSpaceBeforeThem) {
  EXPECT_EQ(pieces("Hello world"), (P{"Hello", " world"}));
  EXPECT_EQ(pieces("a  b"), (P{"a", " ", " b"}));
  EXPECT_EQ(pieces("x    y"), (P{"x", "   ", " y"}));
  EXPECT_EQ(pieces("  hello"), (P{" ", " hello"}));
  EXPECT_EQ(pieces(" "), (P{" "}));
  EXPECT_EQ(pieces("a "), (P{"a", " "}));
}

TEST(Pretokenizer, Contractions) {
  EXPECT_EQ(pieces("don't I'll we've they're he'd I'm it's"),
            (P{"don", "'t", " I", "'ll", " we", "'ve", " they", "'re", " he", "'d", " I", "'m",
               " it", "'s"}));
  // Only lower case, only at the start of a piece.
  EXPECT_EQ(pieces("DON'T"), (P{"DON", "'", "T"}));
  EXPECT_EQ(pieces("x'lly"), (P{"x", "'ll", "y"}));
  EXPECT_EQ(pieces("!'s"), (P{"!'", "s"}));
  EXPECT_EQ(pieces(" 's"), (P{" '", "s"}));
  EXPECT_EQ(pieces("'"), (P{"'"}));
  EXPECT_EQ(pieces("'l"), (P{"'", "l"}));
}

TEST(Pretokenizer, WhiteSpaceRunsLeaveTheirLastCharacterToTheNextPiece) {
  EXPECT_EQ(pieces("a\n\nb"), (P{"a", "\n", "\n", "b"}));
  EXPECT_EQ(pieces("a\n\n"), (P{"a", "\n\n"}));  // at the end the run stays whole
  EXPECT_EQ(pieces("x   \ty"), (P{"x", "   ", "\t", "y"}));
  EXPECT_EQ(pieces("x\t y"), (P{"x", "\t", " y"}));
  EXPECT_EQ(pieces("x \n y"), (P{"x", " \n", " y"}));
  EXPECT_EQ(pieces("\r\nz"), (P{"\r", "\n", "z"}));
  // U+3000 and U+00A0 are white space; U+001C is not (not White_Space), U+0085 is.
  EXPECT_EQ(pieces("a\u3000\u3000b"), (P{"a", "\u3000", "\u3000", "b"}));
  EXPECT_EQ(pieces("a\u00a0b"), (P{"a", "\u00a0", "b"}));
  EXPECT_EQ(pieces("a\x1c\x1c b"), (P{"a", "\x1c\x1c", " b"}));
  EXPECT_EQ(pieces("a\u0085 b"), (P{"a", "\u0085", " b"}));
}

TEST(Pretokenizer, NumbersAndOtherRuns) {
  EXPECT_EQ(pieces("abc123def 456 7x"), (P{"abc", "123", "def", " 456", " 7", "x"}));
  EXPECT_EQ(pieces("hello!!! ...world"), (P{"hello", "!!!", " ...", "world"}));
  EXPECT_EQ(pieces("3.14"), (P{"3", ".", "14"}));
  // Arabic-Indic digits (Nd), a Roman numeral (Nl), a fraction (No) are numbers.
  EXPECT_EQ(pieces("x\u0663\u0664 \u216b\u00bd"), (P{"x", "\u0663\u0664", " \u216b\u00bd"}));
}

TEST(Pretokenizer, ScriptsEmojiAndCombiningMarks) {
  EXPECT_EQ(pieces("中文 テスト"), (P{"中文", " テスト"}));
  EXPECT_EQ(pieces("नमस्ते"), (P{"नमस", "्", "त", "े"}));  // vowel signs are marks
  EXPECT_EQ(pieces("e\u0301te"), (P{"e", "\u0301", "te"}));
  // Emoji, ZWJ and skin tone modifiers are all "other": one run.
  EXPECT_EQ(pieces("👩‍💻 👍🏽x"), (P{"👩‍💻", " 👍🏽", "x"}));
}

TEST(Pretokenizer, EachInvalidByteIsAnOtherCodePoint) {
  EXPECT_EQ(pieces("ab\xff"
                   "cd"),
            (P{"ab", "\xff", "cd"}));
  EXPECT_EQ(pieces(" \x80\x80x"), (P{" \x80\x80", "x"}));
  EXPECT_EQ(pieces("!\xff?"), (P{"!\xff?"}));
  EXPECT_EQ(pieces("\xe4\xb8中"), (P{"\xe4\xb8", "中"}));  // a truncated sequence
  EXPECT_EQ(pieces("a\xed\xa0\x80"
                   "b"),
            (P{"a", "\xed\xa0\x80", "b"}));  // a surrogate
  EXPECT_EQ(pieces("a\xc0\xaf"
                   "b"),
            (P{"a", "\xc0\xaf", "b"}));  // overlong '/'
  EXPECT_EQ(pieces("a\xf4\x90\x80\x80"
                   "b"),
            (P{"a", "\xf4\x90\x80\x80", "b"}));                // > U+10FFFF
  EXPECT_EQ(pieces("caf\xe9 ok"), (P{"caf", "\xe9", " ok"}));  // Latin-1
  EXPECT_EQ(pieces("\xc2\n"), (P{"\xc2", "\n"}));
}

TEST(UnicodeClasses, AreThoseOfUnicode16) {
  using C = CodePointClass;
  EXPECT_EQ(code_point_class('a'), C::Letter);
  EXPECT_EQ(code_point_class('7'), C::Number);
  EXPECT_EQ(code_point_class(' '), C::Space);
  EXPECT_EQ(code_point_class('\v'), C::Space);
  EXPECT_EQ(code_point_class(0x1C), C::Other);
  EXPECT_EQ(code_point_class(0x85), C::Space);
  EXPECT_EQ(code_point_class(0x180E), C::Other);  // no longer White_Space since Unicode 6.3
  EXPECT_EQ(code_point_class(0x200B), C::Other);  // zero width space is not White_Space
  EXPECT_EQ(code_point_class(0x3000), C::Space);
  EXPECT_EQ(code_point_class(0x0301), C::Other);
  EXPECT_EQ(code_point_class(0x4E2D), C::Letter);
  EXPECT_EQ(code_point_class(0x2167), C::Number);
  EXPECT_EQ(code_point_class(0x1F600), C::Other);
  EXPECT_EQ(code_point_class(0x105C0), C::Letter);  // Todhri, new in Unicode 16.0
  EXPECT_EQ(code_point_class(0x10940), C::Other);   // Sidetic, new in Unicode 17.0
  EXPECT_EQ(code_point_class(0xE000), C::Other);    // private use
  EXPECT_EQ(code_point_class(0x10FFFF), C::Other);
  EXPECT_EQ(code_point_class(0x110000), C::Other);
}

// Random text from pieces of every kind: ASCII, white space runs, newlines, multi-byte letters
// and spaces, marks, emoji and invalid bytes.
std::string random_text(std::mt19937& rng, size_t atoms) {
  static const std::vector<std::string> kAtoms = {
      "a",      "Z",    "é",      "中",     "1",      "٣",        "!",
      "'",      "s",    "ll",     "re",     " ",      "  ",       "\t",
      "\n",     "\n\n", "\r\n",   "\u3000", "\u00a0", "\u0301",   "😀",
      "\u200d", "\x1c", "\x85",   "\xff",   "\xc3",   "\xe4\xb8", "\xed\xa0\x80",
      ".",      "-",    "\u2028", "x\n",    " \n"};
  std::uniform_int_distribution<size_t> pick(0, kAtoms.size() - 1);
  std::string s;
  for (size_t i = 0; i < atoms; ++i) s += kAtoms[pick(rng)];
  return s;
}

TEST(Pretokenizer, PiecesCoverTheTextInOrder) {
  std::mt19937 rng(7);
  for (int trial = 0; trial < 200; ++trial) {
    const std::string text = random_text(rng, 60);
    std::string joined;
    for_each_gpt2_piece(text, [&](std::string_view p) {
      ASSERT_FALSE(p.empty());
      joined += p;
    });
    EXPECT_EQ(joined, text);
  }
}

TEST(Pretokenizer, SafeSplitIsNotAfterALongerWhiteSpaceRun) {
  // "\n\n" before a word is two pieces, but one at the end of a chunk: no cut after it.
  const std::string text = "a.\n\nTo";
  EXPECT_EQ(gpt2_safe_split(text, 0), text.size());
  EXPECT_EQ(gpt2_safe_split("a.\nTo", 0), 3u);
  EXPECT_EQ(gpt2_safe_split("a\u3000\nTo\nb", 0), 8u);  // not after U+3000 + '\n'
  EXPECT_EQ(gpt2_safe_split("a\n b\nc", 0), 5u);        // not before a space
  EXPECT_EQ(gpt2_safe_split("\nx", 0), 1u);
  EXPECT_EQ(gpt2_safe_split("a\nb\nc", 3), 4u);
  EXPECT_EQ(gpt2_safe_split("a\nb", 3), 3u);
}

TEST(Pretokenizer, ChunksCutAtSafeSplitsGiveThePiecesOfTheWhole) {
  std::mt19937 rng(11);
  int cuts = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const std::string text = random_text(rng, 80);
    const P whole = pieces(text);
    std::uniform_int_distribution<size_t> from(0, text.size());
    const size_t p = gpt2_safe_split(text, from(rng));
    ASSERT_LE(p, text.size());
    if (p == text.size()) continue;
    ++cuts;
    P parts = pieces(std::string_view(text).substr(0, p));
    const P rest = pieces(std::string_view(text).substr(p));
    parts.insert(parts.end(), rest.begin(), rest.end());
    EXPECT_EQ(parts, whole) << "cut at " << p;
  }
  EXPECT_GT(cuts, 50);
}

}  // namespace
}  // namespace ph
