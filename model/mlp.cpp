#include "model/mlp.h"

#include "model/activation.h"

namespace ph {

Mlp::Mlp(ModelCore& core, const std::string& prefix, const MlpSpec& spec)
    : Block(core),
      act_(spec.activation),
      Fl_(spec.F / core.tp().size),
      fc_(core, {prefix + "fc"}, spec.C, spec.F, spec.bias, spec.init_std, spec.max_rows),
      proj_(core, prefix + "proj", spec.F, spec.C, spec.bias, spec.proj_std, spec.max_rows) {
  adopt(fc_);
  adopt(proj_);
  const size_t n = static_cast<size_t>(spec.max_rows) * static_cast<size_t>(Fl_);
  core.plan().own(&h_, n);
  core.plan().own(&h_act_, n);
  core.plan().shared(&dh_, "mlp.dh", n);
  core.plan().shared(&dh_pre_, "mlp.dh_pre", n);
}

void Mlp::forward(float* y, const float* x, int N) {
  const size_t n = static_cast<size_t>(N) * static_cast<size_t>(Fl_);
  fc_.forward(h_, x, N);
  activation_forward(be(), act_, h_act_, h_, n);
  proj_.forward(y, h_act_, N);
}

void Mlp::backward(float* dx, const float* dy, const float* x, int N) {
  const size_t n = static_cast<size_t>(N) * static_cast<size_t>(Fl_);
  proj_.backward(dh_, dy, h_act_, N);
  be().zero(dh_pre_, n * sizeof(float));
  activation_backward(be(), act_, dh_pre_, h_, dh_, n);
  fc_.backward(dx, dh_pre_, x, N);
}

}  // namespace ph
