// The base of every building block of a model: its place in the model (ModelCore), the
// parameters whose gradients it writes, and shorthands for device pointers.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/model_core.h"

namespace ph {

class Block {
 public:
  explicit Block(ModelCore& core) : core_(core) {}
  Block(const Block&) = delete;
  Block& operator=(const Block&) = delete;

  // The parameters this block (and the blocks inside it) writes gradients of: released to the
  // gradient-readiness tracker when its backward is done with them.
  const std::vector<int>& params() const { return params_; }

 protected:
  // Adds a parameter to the model's table (in arena order) and records that this block writes
  // its gradient. Returns its index.
  int add_param(const std::string& name, std::vector<int64_t> shape, Split split, InitKind init,
                float init_std, bool decay, int64_t padded_rows = 0) {
    const int p =
        core_.table().add(name, std::move(shape), split, init, init_std, decay, padded_rows);
    use(p);
    return p;
  }
  // This block also writes the gradient of an existing parameter p (a tied weight).
  void use(int p) {
    core_.ready().use(p);
    params_.push_back(p);
  }
  // A composite block's parameters include those of a block inside it.
  void adopt(const Block& inner) {
    params_.insert(params_.end(), inner.params_.begin(), inner.params_.end());
  }

  Backend& be() const { return core_.be(); }
  const TpGroup& tp() const { return core_.tp(); }
  float* P(int p) const { return core_.param(p); }
  float* G(int p) const { return core_.grad(p); }

  ModelCore& core_;
  std::vector<int> params_;
};

}  // namespace ph
