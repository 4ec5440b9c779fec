#include "io/pretokenizer.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "io/unicode_classes.h"

namespace ph {

namespace {

constexpr uint8_t kOther = static_cast<uint8_t>(CodePointClass::Other);
constexpr uint8_t kLetter = static_cast<uint8_t>(CodePointClass::Letter);
constexpr uint8_t kNumber = static_cast<uint8_t>(CodePointClass::Number);
constexpr uint8_t kSpace = static_cast<uint8_t>(CodePointClass::Space);
constexpr uint8_t kMultiByte = 4;  // a byte >= 0x80: the class needs UTF-8 decoding

// The class of each ASCII byte; kMultiByte for the others.
constexpr std::array<uint8_t, 256> make_byte_classes() {
  std::array<uint8_t, 256> t{};
  for (int b = 0; b < 256; ++b) {
    uint8_t k = kOther;
    if (b >= 0x80) {
      k = kMultiByte;
    } else if ((b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z')) {
      k = kLetter;
    } else if (b >= '0' && b <= '9') {
      k = kNumber;
    } else if (b == ' ' || (b >= '\t' && b <= '\r')) {
      k = kSpace;
    }
    t[static_cast<size_t>(b)] = k;
  }
  return t;
}

constexpr std::array<uint8_t, 256> kByteClass = make_byte_classes();

inline bool continuation(uint8_t b) {
  return (b & 0xC0) == 0x80;
}

// The class and byte length of the code point that starts at s[i] with lead byte >= 0x80. A byte
// that does not start well-formed UTF-8 is one code point of class Other.
inline uint8_t decode_class(const uint8_t* s, size_t n, size_t i, size_t* len) {
  const uint8_t c0 = s[i];
  const size_t left = n - i;
  uint32_t cp;
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    if (left < 2 || !continuation(s[i + 1])) return *len = 1, kOther;
    cp = (uint32_t{c0} & 0x1F) << 6 | (s[i + 1] & 0x3Fu);
    *len = 2;
  } else if (c0 >= 0xE0 && c0 <= 0xEF) {
    if (left < 3) return *len = 1, kOther;
    const uint8_t c1 = s[i + 1];
    const uint8_t lo = c0 == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
    const uint8_t hi = c0 == 0xED ? 0x9F : 0xBF;  // no surrogates
    if (c1 < lo || c1 > hi || !continuation(s[i + 2])) return *len = 1, kOther;
    cp = (uint32_t{c0} & 0x0F) << 12 | (c1 & 0x3Fu) << 6 | (s[i + 2] & 0x3Fu);
    *len = 3;
  } else if (c0 >= 0xF0 && c0 <= 0xF4) {
    if (left < 4) return *len = 1, kOther;
    const uint8_t c1 = s[i + 1];
    const uint8_t lo = c0 == 0xF0 ? 0x90 : 0x80;  // no overlong forms
    const uint8_t hi = c0 == 0xF4 ? 0x8F : 0xBF;  // nothing past U+10FFFF
    if (c1 < lo || c1 > hi || !continuation(s[i + 2]) || !continuation(s[i + 3])) {
      return *len = 1, kOther;
    }
    cp = (uint32_t{c0} & 0x07) << 18 | (c1 & 0x3Fu) << 12 | (s[i + 2] & 0x3Fu) << 6 |
         (s[i + 3] & 0x3Fu);
    *len = 4;
  } else {
    return *len = 1, kOther;  // a continuation byte, C0, C1 or F5..FF
  }
  return static_cast<uint8_t>(code_point_class(cp));
}

inline uint8_t class_at(const uint8_t* s, size_t n, size_t i, size_t* len) {
  const uint8_t k = kByteClass[s[i]];
  if (k != kMultiByte) return *len = 1, k;
  return decode_class(s, n, i, len);
}

// The end of the run of code points of class `cls` that starts at s[i].
inline size_t run_end(const uint8_t* s, size_t n, size_t i, uint8_t cls) {
  while (i < n) {
    const uint8_t k = kByteClass[s[i]];
    if (k == cls) {
      ++i;
      continue;
    }
    if (k != kMultiByte) break;
    size_t len;
    if (decode_class(s, n, i, &len) != cls) break;
    i += len;
  }
  return i;
}

// Whether a code point ending with byte b may be white space: an ASCII space, or the last byte
// of the UTF-8 of a white space past ASCII (U+0085, U+00A0, U+1680, U+2000..U+200A, U+2028,
// U+2029, U+202F, U+205F, U+3000). Lead bytes are never continuation bytes, so a code point
// that ends with any other byte is not white space.
inline bool ends_white_space(uint8_t b) {
  if (b < 0x80) return kByteClass[b] == kSpace;
  return (b >= 0x80 && b <= 0x8A) || b == 0xA0 || b == 0xA8 || b == 0xA9 || b == 0xAF || b == 0x9F;
}

}  // namespace

size_t gpt2_piece_end(std::string_view text, size_t begin) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  const uint8_t c = s[begin];
  // '(?:[sdmt]|ll|ve|re)
  if (c == '\'' && begin + 1 < n) {
    const uint8_t c1 = s[begin + 1];
    if (c1 == 's' || c1 == 'd' || c1 == 'm' || c1 == 't') return begin + 2;
    if (begin + 2 < n) {
      const uint8_t c2 = s[begin + 2];
      if ((c1 == 'l' && c2 == 'l') || (c1 == 'v' && c2 == 'e') || (c1 == 'r' && c2 == 'e')) {
        return begin + 3;
      }
    }
  }
  size_t len;
  // ' ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+' with the optional space
  if (c == ' ' && begin + 1 < n) {
    const uint8_t next = class_at(s, n, begin + 1, &len);
    if (next != kSpace) return run_end(s, n, begin + 1 + len, next);
  }
  const uint8_t cls = class_at(s, n, begin, &len);
  if (cls != kSpace) return run_end(s, n, begin + len, cls);
  // \s+(?!\S)|\s+ : a run of white space; before a non-space it leaves its last code point to
  // the next piece (unless that is the whole run).
  size_t last = begin;
  size_t i = begin + len;
  while (i < n) {
    if (class_at(s, n, i, &len) != kSpace) return last > begin ? last : i;
    last = i;
    i += len;
  }
  return n;
}

size_t gpt2_safe_split(std::string_view text, size_t from) {
  const auto* s = reinterpret_cast<const uint8_t*>(text.data());
  const size_t n = text.size();
  size_t search = from > 0 ? from - 1 : 0;  // text[p - 1] == '\n' with p >= from
  while (search < n) {
    const void* hit = std::memchr(s + search, '\n', n - search);
    if (hit == nullptr) return n;
    const size_t p = static_cast<size_t>(static_cast<const uint8_t*>(hit) - s) + 1;
    if (p >= n) return n;
    size_t len;
    if ((p < 2 || !ends_white_space(s[p - 2])) && class_at(s, n, p, &len) != kSpace) return p;
    search = p;
  }
  return n;
}

}  // namespace ph
