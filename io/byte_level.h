// GPT-2's bytes-to-unicode alphabet: every byte value stands for one printable code point, so
// that any byte string shows as text in vocab.json and merges.txt. The printable bytes '!'..'~',
// U+00A1..U+00AC and U+00AE..U+00FF stand for themselves; the other 68 bytes (controls, space,
// DEL, U+0080..U+00A0, U+00AD), in increasing order, stand for U+0100, U+0101, ..., U+0143. So
// byte 0x20 (space) is "Ġ" (U+0120) and byte 0x0A (newline) is "Ċ" (U+010A).
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace ph {

// The code point that stands for byte `b`.
char32_t byte_level_symbol(uint8_t b);

// The byte that code point `symbol` stands for, or -1 when it is not in the alphabet.
int byte_level_byte(char32_t symbol);

// The UTF-8 text of the symbols of `bytes`, one symbol per byte.
std::string byte_level_encode(std::string_view bytes);

// The bytes that the symbols of `text` (UTF-8) stand for, appended to *out. Returns false, and
// leaves *out unspecified, when `text` is not UTF-8 or holds a code point outside the alphabet.
bool byte_level_decode(std::string_view text, std::string* out);

// The 256 bytes in the order of ids 0..255 of GPT-2's vocab.json: the printable bytes that
// stand for themselves in increasing order, then the others in increasing order (so id 0 is
// '!', id 188 is byte 0x00 and id 220 is the space).
const std::array<uint8_t, 256>& gpt2_byte_order();

}  // namespace ph
