// polyhead sample: a GPT checkpoint continues one prompt (--prompt, printed as text) or every
// line of a file (--prompts, sampled in batches, printed as JSON Lines); see kSampleHelp. Bad
// input throws InputError (exit 2).
#pragma once
#include <string>
#include <vector>

namespace ph {

extern const char* const kSampleHelp;

// args[0] is "sample".
int cmd_sample(const std::vector<std::string>& args);

}  // namespace ph
