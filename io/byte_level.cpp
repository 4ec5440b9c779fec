#include "io/byte_level.h"

namespace ph {

namespace {

constexpr bool stands_for_itself(int b) {
  return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
}

struct Alphabet {
  std::array<char32_t, 256> symbol{};
  std::array<int16_t, 0x144> byte{};  // symbol -> byte, -1 for code points outside
  std::array<uint8_t, 256> order{};
  std::array<char, 512> utf8{};  // two bytes per symbol; the second is 0 for ASCII
};

constexpr Alphabet make_alphabet() {
  Alphabet a;
  for (auto& b : a.byte) b = -1;
  int shifted = 0, next = 0;
  for (int b = 0; b < 256; ++b) {
    if (stands_for_itself(b)) a.order[static_cast<size_t>(next++)] = static_cast<uint8_t>(b);
  }
  for (int b = 0; b < 256; ++b) {
    const char32_t s =
        stands_for_itself(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + shifted++);
    if (!stands_for_itself(b)) a.order[static_cast<size_t>(next++)] = static_cast<uint8_t>(b);
    a.symbol[static_cast<size_t>(b)] = s;
    a.byte[s] = static_cast<int16_t>(b);
    if (s < 0x80) {
      a.utf8[static_cast<size_t>(2 * b)] = static_cast<char>(s);
    } else {
      a.utf8[static_cast<size_t>(2 * b)] = static_cast<char>(0xC0 | (s >> 6));
      a.utf8[static_cast<size_t>(2 * b + 1)] = static_cast<char>(0x80 | (s & 0x3F));
    }
  }
  return a;
}

constexpr Alphabet kAlphabet = make_alphabet();

}  // namespace

char32_t byte_level_symbol(uint8_t b) {
  return kAlphabet.symbol[b];
}

int byte_level_byte(char32_t symbol) {
  return symbol < kAlphabet.byte.size() ? kAlphabet.byte[symbol] : -1;
}

std::string byte_level_encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const char c : bytes) {
    const size_t b = static_cast<uint8_t>(c);
    out.push_back(kAlphabet.utf8[2 * b]);
    if (kAlphabet.utf8[2 * b + 1] != 0) out.push_back(kAlphabet.utf8[2 * b + 1]);
  }
  return out;
}

bool byte_level_decode(std::string_view text, std::string* out) {
  out->reserve(out->size() + text.size());
  for (size_t i = 0; i < text.size();) {
    const auto c0 = static_cast<uint8_t>(text[i]);
    char32_t cp;
    if (c0 < 0x80) {
      cp = c0;
      i += 1;
    } else if ((c0 & 0xE0) == 0xC0 && i + 1 < text.size() &&
               (static_cast<uint8_t>(text[i + 1]) & 0xC0) == 0x80) {
      cp = static_cast<char32_t>(((c0 & 0x1F) << 6) | (static_cast<uint8_t>(text[i + 1]) & 0x3F));
      if (cp < 0x80) return false;  // overlong
      i += 2;
    } else {
      return false;  // every symbol is below U+0800: one or two bytes
    }
    const int b = byte_level_byte(cp);
    if (b < 0) return false;
    out->push_back(static_cast<char>(b));
  }
  return true;
}

const std::array<uint8_t, 256>& gpt2_byte_order() {
  return kAlphabet.order;
}

}  // namespace ph
