// The activation arena, planned before it exists: while a model is built, each block declares
// the buffers it keeps between forward and backward (its own) and the scratch it needs only
// inside one call (shared, by name, with every other block that asks for the same name — the
// buffer is as large as the largest request). allocate() then makes one device allocation and
// binds every declared pointer into it. Nothing is allocated after that.
#pragma once
#include <cstddef>
#include <string>
#include <vector>

#include "kernels/backend.h"

namespace ph {

class ActivationPlan {
 public:
  // A buffer of n floats owned by the caller's block; *slot is set by allocate().
  void own(float** slot, size_t n);
  // A scratch buffer shared by every request of the same name: at least n floats.
  void shared(float** slot, const std::string& name, size_t n);
  // One allocation of the backend for everything declared; binds the slots. Once.
  DeviceBuffer<float> allocate(Backend& be);

 private:
  struct Request {
    float** slot;
    size_t region;  // index into regions_
  };
  struct Region {
    std::string name;  // empty: owned by one block
    size_t size;
  };
  std::vector<Request> requests_;
  std::vector<Region> regions_;
  bool allocated_ = false;
};

}  // namespace ph
