// Parsing of the subcommands' arguments, shared by every command of the CLI. Every problem is
// an InputError naming the command and the option.
#pragma once
#include <string>
#include <utility>
#include <vector>

namespace ph {

bool is_help(const std::string& a);

// Options of the form --name VALUE; everything else is positional.
struct Parsed {
  std::vector<std::string> positional;
  std::vector<std::pair<std::string, std::string>> options;
  std::vector<std::string> multi;  // values of the multi-valued option (prepare --input)
};

// args[0] is the command itself and is skipped. `known` lists the accepted options;
// `multi_name` (if any) takes every following value up to the next option. Throws
//   CMD: unknown option '--x' (see 'polyhead CMD --help')
//   CMD: --x needs a value          CMD: --input needs at least one value
Parsed parse_args(const std::vector<std::string>& args, const std::string& cmd,
                  const std::vector<std::string>& known, const std::string& multi_name = "");

// The value of the last --name given, or nullptr.
const std::string* option(const Parsed& p, const std::string& name);
// Every value of a repeatable --name, in order.
std::vector<std::string> options(const Parsed& p, const std::string& name);

// The lines of the file `path` (null: standard input), without their line ends ("\n" or
// "\r\n"). Throws "CMD: cannot open NAME 'path': <reason>".
std::vector<std::string> read_input_lines(const std::string& cmd, const std::string& name,
                                          const std::string* path);

// "CMD: NAME expects an integer in [lo, hi], got 'v'" (a number in the second).
long to_long(const std::string& cmd, const std::string& name, const std::string& v, long lo,
             long hi);
double to_double(const std::string& cmd, const std::string& name, const std::string& v, double lo,
                 double hi);

}  // namespace ph
