// The kinds of failure that every layer reports and main() turns into an exit status.
#pragma once
#include <stdexcept>

namespace ph {

// Bad input of any kind (config, data, checkpoint, command line, layout). The message is
// complete and meant for the user as it is; main prints it once and exits with status 2.
struct InputError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The environment failed the run while it worked: a write that did not complete (a full disk,
// a file system that refuses it). Not bad input: main prints it once and exits with status 1.
// Nothing written before it is lost; the message says what was kept.
struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A failure that every rank detects at the same point (for example a non-finite global loss
// under nan_policy: stop): main prints it once, from rank 0, and every rank exits with 1.
struct AgreedError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace ph
