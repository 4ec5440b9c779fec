// polyhead prepare --src FILE --tgt FILE --tokenizer T --out DIR: parallel text into pair files
// (io/prepare_pairs.h). cmd_prepare (trainer/cli.cpp) hands its arguments here when they name
// --src or --tgt. Bad input throws InputError (exit 2); a failed write IoError (exit 1).
#pragma once
#include <string>
#include <vector>

namespace ph {

// The part of `polyhead prepare --help` about parallel text.
extern const char* const kPreparePairsHelp;

// Whether the arguments of prepare ask for parallel text (name --src or --tgt).
bool is_prepare_pairs(const std::vector<std::string>& args);

// args[0] is "prepare".
int cmd_prepare_pairs(const std::vector<std::string>& args);

}  // namespace ph
