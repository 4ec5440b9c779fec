#include "model/layer_norm.h"

namespace ph {

LayerNorm::LayerNorm(ModelCore& core, const std::string& name, int C, bool bias, int max_rows,
                     float eps)
    : Block(core), C_(C), eps_(eps) {
  w_ = add_param(name + ".weight", {C}, Split::Replicated, InitKind::Ones, 0.0f, false);
  if (bias) b_ = add_param(name + ".bias", {C}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  const size_t rows = static_cast<size_t>(max_rows);
  core.plan().own(&out_, rows * static_cast<size_t>(C));
  core.plan().own(&mean_, rows);
  core.plan().own(&rstd_, rows);
}

float* LayerNorm::forward(const float* x, int N) {
  be().layernorm_forward(out_, mean_, rstd_, x, P(w_), P(b_), N, C_, eps_);
  return out_;
}

void LayerNorm::backward(float* dx, const float* dy, const float* x, int N) {
  be().layernorm_backward(dx, G(w_), G(b_), dy, x, P(w_), mean_, rstd_, N, C_);
}

void LayerNorm::backward_into(float* dx, const float* dy, const float* x, int N) {
  be().layernorm_backward_into(dx, G(w_), G(b_), dy, x, P(w_), mean_, rstd_, N, C_);
}

}  // namespace ph
