// Text as a JSON string (io/json_string.h): escapes, UTF-8 kept, ill-formed bytes replaced by
// U+FFFD one byte at a time, and never a raw newline.
#include <gtest/gtest.h>

#include <string>

#include "io/json_string.h"

namespace ph {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(JsonString, EscapesQuotesBackslashesAndControlCharacters) {
  EXPECT_EQ(json_string(""), "\"\"");
  EXPECT_EQ(json_string("a \"b\" \\c"), "\"a \\\"b\\\" \\\\c\"");
  EXPECT_EQ(json_string("1\n2\t3\r4\b5\f"), "\"1\\n2\\t3\\r4\\b5\\f\"");
  EXPECT_EQ(json_string(std::string("\x01\x1f\x00x\x7f", 5)), "\"\\u0001\\u001f\\u0000x\x7f\"");
}

TEST(JsonString, KeepsUtf8AndReplacesEachIllFormedByte) {
  EXPECT_EQ(json_string("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\"caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80\"");
  EXPECT_EQ(json_string("\x80"), "\"" + kFffd + "\"");                // stray continuation
  EXPECT_EQ(json_string("a\xC3"), "\"a" + kFffd + "\"");              // truncated at the end
  EXPECT_EQ(json_string("\xE2\x82x"), "\"" + kFffd + kFffd + "x\"");  // truncated inside
  EXPECT_EQ(json_string("\xC0\xAF"), "\"" + kFffd + kFffd + "\"");    // overlong '/'
  EXPECT_EQ(json_string("\xE0\x80\xAF"), "\"" + kFffd + kFffd + kFffd + "\"");  // overlong
  EXPECT_EQ(json_string("\xED\xA0\x80"), "\"" + kFffd + kFffd + kFffd + "\"");  // surrogate
  EXPECT_EQ(json_string("\xF4\x90\x80\x80"),
            "\"" + std::string() + kFffd + kFffd + kFffd + kFffd + "\"");  // past U+10FFFF
  EXPECT_EQ(json_string("\xF4\x8F\xBF\xBF\xFF"), "\"\xF4\x8F\xBF\xBF" + kFffd + "\"");
}

TEST(JsonString, AllBytesGiveOneLine) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string s = json_string(all);
  EXPECT_EQ(s.find('\n'), std::string::npos);
  EXPECT_EQ(s.find('\r'), std::string::npos);
  EXPECT_EQ(s.front(), '"');
  EXPECT_EQ(s.back(), '"');
}

}  // namespace
}  // namespace ph
