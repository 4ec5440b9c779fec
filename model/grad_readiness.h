// When a parameter's gradient is final within one backward pass: every block that writes a
// parameter's gradient declares it (use), and tells when its backward has finished with its
// parameters (release). A parameter is ready once all of its users have released it — a tied
// embedding only after both the LM head and the embedding. Each release reports the ranges of
// the arena that became ready, merged where adjacent, to the hook (data parallelism starts its
// all-reduces there, overlapping the rest of backward).
#pragma once
#include <cstddef>
#include <functional>
#include <vector>

#include "model/param_table.h"

namespace ph {

class GradReadiness {
 public:
  using Hook = std::function<void(size_t offset, size_t count)>;

  // A block writes the gradient of parameter p (call once per block and parameter).
  void use(int p);
  // A backward pass starts: every parameter waits for all its users again.
  void begin();
  // A block's backward has finished with these parameters; reports newly ready ranges of the
  // table's arena to the hook (if any).
  void release(const std::vector<int>& params, const ParamTable& table);
  void set_hook(Hook hook) { hook_ = std::move(hook); }

 private:
  std::vector<int> users_;    // per parameter
  std::vector<int> pending_;  // users that have not released it in this pass
  std::vector<int> ready_;    // scratch: parameters that became ready in one release
  Hook hook_;
};

}  // namespace ph
