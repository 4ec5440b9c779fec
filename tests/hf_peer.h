// Running tests/bpe_hf_peer.py (HF `tokenizers`, the peer of polyhead's BPE trainer) from a
// test: the interpreter is $POLYHEAD_PYTHON, else the virtual environment that launch/pyenv.sh
// makes beside the sources; without one that imports tokenizers the test skips.
#pragma once
#include <cstdlib>
#include <filesystem>
#include <string>

#include "test_util.h"

namespace ph::testing {

inline std::string hf_python() {
  if (const char* p = std::getenv("POLYHEAD_PYTHON")) return p;
  return testing::source_dir() + "/.venv/bin/python";
}

// Why the peer cannot run ("" when it can).
inline std::string hf_peer_missing() {
  const std::string python = hf_python();
  if (!std::filesystem::exists(python)) {
    return python +
           " does not exist: run launch/pyenv.sh to make the Python environment of "
           "the tokenizer tests (or set POLYHEAD_PYTHON)";
  }
  const RunResult r = run_command(python + " -c 'import tokenizers'");
  if (r.exit_code == 0) return "";
  return python + " cannot import tokenizers: run launch/pyenv.sh\n" + r.output;
}

// Runs the peer with `args` (see tests/bpe_hf_peer.py).
inline RunResult run_hf_peer(const std::string& args) {
  return run_command(hf_python() + " " + testing::source_dir() + "/tests/bpe_hf_peer.py " + args);
}

}  // namespace ph::testing
