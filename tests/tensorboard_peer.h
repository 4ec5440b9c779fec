// Reading TensorBoard event files back from a test with TensorBoard's own reader
// (tests/tensorboard_reader.py): the interpreter is $POLYHEAD_PYTHON, else the virtual
// environment that launch/pyenv.sh makes beside the sources; without one that imports
// tensorboard the tests skip.
#pragma once
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tests/hf_peer.h"

namespace ph::testing {

// Why the reader cannot run ("" when it can).
inline std::string tensorboard_missing() {
  const std::string python = hf_python();
  const RunResult r = run_command(python + " -c 'import tensorboard'");
  if (r.exit_code == 0) return "";
  return python + " cannot import tensorboard: run launch/pyenv.sh (or set POLYHEAD_PYTHON)\n" +
         r.output;
}

// tag -> (step, value) in the order TensorBoard gives them.
using TbScalars = std::map<std::string, std::vector<std::pair<int64_t, double>>>;

struct TbRead {
  RunResult run;
  TbScalars scalars;
};

inline TbRead read_tensorboard(const std::string& dir) {
  TbRead r;
  r.run = run_command(hf_python() + " " + testing::source_dir() + "/tests/tensorboard_reader.py " +
                      dir);
  std::istringstream in(r.run.output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string word, tag, value;
    int64_t step = 0;
    if (words >> word >> tag >> step >> value && word == "scalar")
      r.scalars[tag].push_back({step, std::strtod(value.c_str(), nullptr)});
  }
  return r;
}

}  // namespace ph::testing
