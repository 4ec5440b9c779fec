// polyhead tokenizer train | encode | decode (see each one's --help). Bad input throws
// InputError (exit 2); a failed write IoError (exit 1).
#pragma once
#include <string>
#include <vector>

namespace ph {

// args[0] is "tokenizer", args[1] the subcommand.
int cmd_tokenizer(const std::vector<std::string>& args);

// The subcommands; args[0] is the subcommand's name.
int cmd_tokenizer_train(const std::vector<std::string>& args);   // trainer/cli_tokenizer_train.cpp
int cmd_tokenizer_encode(const std::vector<std::string>& args);  // trainer/cli_tokenizer_codec.cpp
int cmd_tokenizer_decode(const std::vector<std::string>& args);  // trainer/cli_tokenizer_codec.cpp

}  // namespace ph
