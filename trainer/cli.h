// The polyhead command line: train, eval, sample, prepare, inspect. Bad input of any kind
// throws InputError; main() prints it once and exits with status 2.
#pragma once
#include <string>
#include <vector>

namespace ph {

// Runs the command in args (args[0] is the subcommand). Returns the process exit code.
int run_cli(const std::vector<std::string>& args);

}  // namespace ph
