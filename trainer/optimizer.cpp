#include "trainer/optimizer.h"

#include <cmath>

#include "kernels/cpu/optimizer.h"

namespace ph {

AdamW::AdamW(const OptimConfig& cfg, const ParamTable& table)
    : cfg_(cfg), table_(table), m_(table.total()), v_(table.total()) {}

double AdamW::grad_norm(const float* grads, size_t n) {
  return std::sqrt(cpu::sum_squares(grads, n));
}

void AdamW::step(float* params, const float* grads, float lr, int t, float grad_scale) {
  AdamWParams a{};
  a.lr = lr;
  a.beta1 = cfg_.beta1;
  a.beta2 = cfg_.beta2;
  a.eps = cfg_.eps;
  a.bias_correction1 = 1.0f - std::pow(cfg_.beta1, static_cast<float>(t));
  a.bias_correction2 = 1.0f - std::pow(cfg_.beta2, static_cast<float>(t));
  a.grad_scale = grad_scale;
  for (const Param& p : table_.params()) {
    const bool decay = p.decay || (cfg_.decay_1d && p.shape.size() == 1);
    a.weight_decay = decay ? cfg_.weight_decay : 0.0f;
    cpu::adamw_update(params + p.offset, grads + p.offset, m_.data() + p.offset,
                      v_.data() + p.offset, p.numel, a);
  }
}

float clip_scale(double norm, float clip) {
  if (clip <= 0.0f || !(norm > clip)) return 1.0f;
  return static_cast<float>(clip / (norm + 1e-6));
}

}  // namespace ph
