// polyhead translate: an encoder-decoder checkpoint translates text, one line per input line
// (see kTranslateHelp). Bad input throws InputError (exit 2).
#pragma once
#include <string>
#include <vector>

namespace ph {

extern const char* const kTranslateHelp;

// args[0] is "translate".
int cmd_translate(const std::vector<std::string>& args);

}  // namespace ph
