// Text as a JSON string (RFC 8259), for output that a JSON reader parses line by line (one
// object per line: the string never holds a raw newline).
#pragma once
#include <string>
#include <string_view>

namespace ph {

// `text` in double quotes: '"' and '\' escaped, control characters (below U+0020) as \n, \t, \r,
// \b, \f or \u00XX, well-formed UTF-8 as it is, and each byte that is not part of well-formed
// UTF-8 (a stray continuation byte, a truncated or overlong sequence, a surrogate, a code point
// past U+10FFFF) replaced by U+FFFD, as Python's bytes.decode(errors="replace") does, so that
// the result is always valid UTF-8 and valid JSON.
std::string json_string(std::string_view text);

}  // namespace ph
