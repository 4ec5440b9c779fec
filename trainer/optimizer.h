// AdamW over the parameter arena, driven by the parameter table (decay per parameter), with
// gradient clipping by global norm.
#pragma once
#include <cstddef>

#include "io/config.h"
#include "model/arena.h"
#include "model/param_table.h"

namespace ph {

class AdamW {
 public:
  AdamW(const OptimConfig& cfg, const ParamTable& table);

  float* m() { return m_.data(); }
  float* v() { return v_.data(); }
  size_t size() const { return m_.size(); }

  // Global L2 norm of the gradient arena (each element counted once).
  static double grad_norm(const float* grads, size_t n);

  // Applies one AdamW step with learning rate lr; t is the 1-based step count used for bias
  // correction; grad_scale multiplies every gradient first (the clipping factor).
  void step(float* params, const float* grads, float lr, int t, float grad_scale);

 private:
  OptimConfig cfg_;
  const ParamTable& table_;
  Arena m_, v_;
};

// Clipping factor for a gradient of norm `norm` under max norm `clip` (0 disables).
float clip_scale(double norm, float clip);

}  // namespace ph
