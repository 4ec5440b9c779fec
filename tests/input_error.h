// The message of the InputError a piece of code throws, for the tests of bad input.
#pragma once
#include <functional>
#include <string>

#include "io/config.h"

namespace ph::testing {

// The message of the InputError that f throws ("" if it throws none).
inline std::string input_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace ph::testing
