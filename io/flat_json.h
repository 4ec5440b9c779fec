// A reader for one flat JSON object whose values are numbers, such as a tokenizer's
// vocab.json ({"token": id, ...}), that reports each member with the line it is on (which a
// general JSON library's event interface does not give).
#pragma once
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

namespace ph {

// Calls member(key, number, line) for each member of the object in `text`, in order: key is
// the member's name unescaped (UTF-8), number the value's JSON number text, or empty when the
// value is not a number (member then throws or the reader does), line the 1-based line of the
// key. Syntax (RFC 8259) is checked as far as this shape needs; a problem throws InputError
// "<where> line L: <what>", e.g. "expected ':' after "abc"".
void read_flat_json_object(
    std::string_view text, const std::string& where,
    const std::function<void(std::string&& key, std::string_view number, size_t line)>& member);

}  // namespace ph
