// GPT-2's bytes-to-unicode alphabet (io/byte_level.h).
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "io/byte_level.h"

namespace ph {
namespace {

TEST(ByteLevel, SymbolsOfGpt2) {
  EXPECT_EQ(byte_level_symbol('!'), U'!');
  EXPECT_EQ(byte_level_symbol('~'), U'~');
  EXPECT_EQ(byte_level_symbol(0xE9), U'\u00e9');
  EXPECT_EQ(byte_level_symbol(0x00), U'\u0100');
  EXPECT_EQ(byte_level_symbol('\n'), U'\u010a');  // "Ċ"
  EXPECT_EQ(byte_level_symbol(' '), U'\u0120');   // "Ġ"
  EXPECT_EQ(byte_level_symbol(0x7F), U'\u0121');
  EXPECT_EQ(byte_level_symbol(0xAD), U'\u0143');  // the last of the 68 shifted bytes
  EXPECT_EQ(byte_level_encode(" the\n"), "\u0120the\u010a");
  std::set<char32_t> symbols;
  for (int b = 0; b < 256; ++b) {
    const char32_t s = byte_level_symbol(static_cast<uint8_t>(b));
    symbols.insert(s);
    EXPECT_EQ(byte_level_byte(s), b);
  }
  EXPECT_EQ(symbols.size(), 256u);
  EXPECT_EQ(byte_level_byte(U' '), -1);
  EXPECT_EQ(byte_level_byte(U'\u0144'), -1);
}

TEST(ByteLevel, EveryByteStringRoundTrips) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  std::string back;
  ASSERT_TRUE(byte_level_decode(byte_level_encode(all), &back));
  EXPECT_EQ(back, all);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int trial = 0; trial < 100; ++trial) {
    std::string s(static_cast<size_t>(trial * 7), '\0');
    for (char& c : s) c = static_cast<char>(byte(rng));
    back.clear();
    ASSERT_TRUE(byte_level_decode(byte_level_encode(s), &back));
    EXPECT_EQ(back, s);
  }
}

TEST(ByteLevel, DecodeRejectsTextOutsideTheAlphabet) {
  std::string out;
  EXPECT_FALSE(byte_level_decode("a b", &out));       // a real space
  EXPECT_FALSE(byte_level_decode("中", &out));        // three bytes
  EXPECT_FALSE(byte_level_decode("\xc4", &out));      // truncated
  EXPECT_FALSE(byte_level_decode("\xc1\xa1", &out));  // overlong 'a'
  EXPECT_FALSE(byte_level_decode("\u0144", &out));    // just past the alphabet
  out.clear();
  EXPECT_TRUE(byte_level_decode("\u0120hi", &out));
  EXPECT_EQ(out, " hi");
}

TEST(ByteLevel, Gpt2VocabularyOrder) {
  const auto& order = gpt2_byte_order();
  EXPECT_EQ(order[0], '!');
  EXPECT_EQ(order[93], '~');
  EXPECT_EQ(order[94], 0xA1);
  EXPECT_EQ(order[188], 0x00);
  EXPECT_EQ(order[198], '\n');
  EXPECT_EQ(order[220], ' ');
  EXPECT_EQ(order[255], 0xAD);
  EXPECT_EQ(std::set<uint8_t>(order.begin(), order.end()).size(), 256u);
}

}  // namespace
}  // namespace ph
