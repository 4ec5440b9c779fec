// GPT-2's pre-tokenization: text is cut into pieces that byte-pair merges never cross. The
// pieces are the successive leftmost matches of GPT-2's pattern, as tiktoken's "gpt2"
// encoding applies it:
//
//   '(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// over Unicode code points (\p{L} letters, \p{N} numbers, \s Unicode White_Space, with the
// Unicode version of tiktoken's regex engine; io/unicode_classes.h says which). The pieces
// concatenate to the text, byte for byte.
//
// Bytes that are not part of well-formed UTF-8 (a stray continuation byte, a truncated or
// overlong sequence, a surrogate, a code point past U+10FFFF) count as one code point each
// that is neither letter, number nor space — exactly what GPT-2's pattern does to the lone
// surrogates that Python's "surrogateescape" decoding makes of them. So invalid bytes join
// a ` ?[^\s\p{L}\p{N}]+` run, and any byte string has one well-defined split.
#pragma once
#include <cstddef>
#include <string_view>

namespace ph {

// The end of the piece that starts at `begin` (begin < text.size()); the result is in
// (begin, text.size()]. The piece depends on no text before `begin` (the pattern has no
// look-behind), but through the look-ahead of `\s+(?!\S)` a run of white space depends on what
// follows it: "\n\n" is one piece at the end of a text and two before a word. So text cut into
// chunks pre-tokenizes to the same pieces only where gpt2_safe_split cuts it.
size_t gpt2_piece_end(std::string_view text, size_t begin);

// Calls fn(std::string_view piece) for each piece of `text`, in order.
template <class Fn>
void for_each_gpt2_piece(std::string_view text, Fn&& fn) {
  size_t begin = 0;
  while (begin < text.size()) {
    const size_t end = gpt2_piece_end(text, begin);
    fn(text.substr(begin, end - begin));
    begin = end;
  }
}

// A position p in [from, text.size()] where the text can be cut into two chunks that, each
// pre-tokenized alone, give exactly the pieces of the whole text (or text.size()): the first
// p >= from where text[p-1] is a '\n' that is a whole run of white space, i.e. the code point
// before it (if any) and the one at p are not white space. Then the run is the piece "\n",
// alone or not, and no piece crosses p. Parallel encoders and trainers cut their chunks there.
size_t gpt2_safe_split(std::string_view text, size_t from);

}  // namespace ph
