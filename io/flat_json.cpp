#include "io/flat_json.h"

#include <cstdint>

#include "io/config.h"

namespace ph {

namespace {

class Reader {
 public:
  Reader(std::string_view text, const std::string& where) : s_(text), where_(where) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw InputError(where_ + " line " + std::to_string(line_) + ": " + what);
  }

  void skip_space() {
    while (i_ < s_.size()) {
      const char c = s_[i_];
      if (c == '\n') {
        ++line_;
      } else if (c != ' ' && c != '\t' && c != '\r') {
        return;
      }
      ++i_;
    }
  }

  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return s_[i_]; }
  size_t line() const { return line_; }

  // Consumes `c` after white space, or fails with "expected <what>".
  void expect(char c, const std::string& what) {
    skip_space();
    if (at_end() || s_[i_] != c) fail("expected " + what + found());
    ++i_;
  }

  std::string found() const {
    if (at_end()) return ", found the end of the file";
    return ", found '" + printable(s_.substr(i_, 1)) + "'";
  }

  // A JSON string at s_[i_] == '"', unescaped to UTF-8.
  std::string string() {
    std::string out;
    ++i_;
    for (;;) {
      if (at_end()) fail("a string is not closed before the end of the file");
      const char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) fail("a control character in a string");
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (at_end()) fail("a string is not closed before the end of the file");
      const char e = s_[i_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u':
          append_utf8(out, escaped_code_point());
          break;
        default:
          fail("invalid escape '\\" + printable(std::string_view(&e, 1)) + "' in a string");
      }
    }
  }

  // A JSON number's text at s_[i_] ('-' or a digit).
  std::string_view number() {
    const size_t start = i_;
    if (s_[i_] == '-') ++i_;
    if (at_end() || !digit(s_[i_])) fail("a number needs digits");
    if (s_[i_] == '0') {
      ++i_;
    } else {
      while (!at_end() && digit(s_[i_])) ++i_;
    }
    if (!at_end() && s_[i_] == '.') {
      ++i_;
      if (at_end() || !digit(s_[i_])) fail("a number needs digits after '.'");
      while (!at_end() && digit(s_[i_])) ++i_;
    }
    if (!at_end() && (s_[i_] == 'e' || s_[i_] == 'E')) {
      ++i_;
      if (!at_end() && (s_[i_] == '+' || s_[i_] == '-')) ++i_;
      if (at_end() || !digit(s_[i_])) fail("a number needs digits in its exponent");
      while (!at_end() && digit(s_[i_])) ++i_;
    }
    return s_.substr(start, i_ - start);
  }

 private:
  static bool digit(char c) { return c >= '0' && c <= '9'; }

  uint32_t hex4() {
    if (s_.size() - i_ < 4) fail("\\u needs four hexadecimal digits");
    uint32_t v = 0;
    for (int k = 0; k < 4; ++k) {
      const char c = s_[i_++];
      uint32_t d;
      if (c >= '0' && c <= '9') {
        d = static_cast<uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<uint32_t>(c - 'A' + 10);
      } else {
        fail("\\u needs four hexadecimal digits");
      }
      v = v << 4 | d;
    }
    return v;
  }

  // The code point of a \u escape (a surrogate pair counts as one).
  uint32_t escaped_code_point() {
    const uint32_t hi = hex4();
    if (hi >= 0xDC00 && hi <= 0xDFFF) fail("a \\u escape is a lone low surrogate");
    if (hi < 0xD800 || hi > 0xDBFF) return hi;
    if (s_.size() - i_ < 2 || s_[i_] != '\\' || s_[i_ + 1] != 'u') {
      fail("a \\u escape is a high surrogate without its low surrogate");
    }
    i_ += 2;
    const uint32_t lo = hex4();
    if (lo < 0xDC00 || lo > 0xDFFF)
      fail("a \\u escape is a high surrogate without its low surrogate");
    return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  std::string_view s_;
  const std::string& where_;
  size_t i_ = 0;
  size_t line_ = 1;
};

}  // namespace

void read_flat_json_object(
    std::string_view text, const std::string& where,
    const std::function<void(std::string&& key, std::string_view number, size_t line)>& member) {
  Reader r(text, where);
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") r.fail("a byte order mark");
  r.expect('{', "'{' (a JSON object)");
  r.skip_space();
  if (!r.at_end() && r.peek() == '}') {
    r.expect('}', "'}'");
  } else {
    for (;;) {
      r.skip_space();
      if (r.at_end() || r.peek() != '"') r.fail("expected a token (a JSON string)" + r.found());
      const size_t line = r.line();
      std::string key = r.string();
      std::string shown(1, '"');
      shown += printable(key);
      shown += '"';
      r.expect(':', "':' after " + shown);
      r.skip_space();
      std::string_view number;
      if (!r.at_end() && (r.peek() == '-' || (r.peek() >= '0' && r.peek() <= '9'))) {
        number = r.number();
      }
      member(std::move(key), number, line);
      if (number.empty()) r.fail("expected a number after " + shown + r.found());
      r.skip_space();
      if (!r.at_end() && r.peek() == ',') {
        r.expect(',', "','");
        continue;
      }
      r.expect('}', "',' or '}' after the value of " + shown);
      break;
    }
  }
  r.skip_space();
  if (!r.at_end()) r.fail("text after the object's closing '}'");
}

}  // namespace ph
