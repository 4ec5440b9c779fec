// The backend that tests run the model and trainer parts on: the CPU backend, whose device
// memory is host memory, so tests may read parameters, gradients and logits directly.
#pragma once
#include "kernels/backend.h"

namespace ph::test {

inline Backend& cpu() {
  static const std::unique_ptr<Backend> backend = make_cpu_backend();
  return *backend;
}

}  // namespace ph::test
