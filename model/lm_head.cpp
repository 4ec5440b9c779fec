#include "model/lm_head.h"

#include <stdexcept>

namespace ph {

namespace {

ColumnParallelLinear head_projection(ModelCore& core, int tied, const std::string& name, int C,
                                     int V, int Vp, float init_std, int max_rows, bool bias) {
  if (tied >= 0) return ColumnParallelLinear(core, tied, C, max_rows, bias ? name + ".bias" : "");
  if (bias) throw std::logic_error("LmHead: a bias needs a tied weight");
  return ColumnParallelLinear(core, {name}, C, V, false, init_std, max_rows, Vp);
}

}  // namespace

LmHead::LmHead(ModelCore& core, int tied_weight, const std::string& name, int C, int V, int Vp,
               float init_std, int max_rows, bool bias)
    : Block(core),
      proj_(head_projection(core, tied_weight, name, C, V, Vp, init_std, max_rows, bias)) {
  adopt(proj_);
  core.plan().own(&logits_, static_cast<size_t>(max_rows) * static_cast<size_t>(proj_.out_local()));
}

void LmHead::forward(const float* x, int N) {
  proj_.forward(logits_, x, N);
}

void LmHead::backward(float* dx, const float* x, int N) {
  proj_.backward(dx, logits_, x, N);
}

}  // namespace ph
