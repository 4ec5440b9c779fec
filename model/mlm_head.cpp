#include "model/mlm_head.h"

#include "model/activation.h"

namespace ph {

MlmHead::MlmHead(ModelCore& core, int wte, const MlmHeadSpec& s)
    : Block(core),
      C_(s.C),
      act_(s.activation),
      w_(add_param("mlm.dense.weight", {s.C, s.C}, Split::Replicated, InitKind::Normal, s.init_std,
                   true)),
      b_(add_param("mlm.dense.bias", {s.C}, Split::Replicated, InitKind::Zeros, 0.0f, false)),
      ln_(core, "mlm.ln", s.C, true, s.max_rows, s.ln_eps),
      decoder_(core, wte, "mlm", s.C, s.V, s.Vp, s.init_std, s.max_rows, true) {
  adopt(ln_);
  adopt(decoder_);
  be().reserve_linear(s.max_rows, s.C, s.C);
  const size_t n = static_cast<size_t>(s.max_rows) * static_cast<size_t>(s.C);
  core.plan().own(&h_, n);
  core.plan().own(&h_act_, n);
  core.plan().shared(&dy_, "mlm.dy", n);
  core.plan().shared(&dh_, "mlm.dh", n);
}

void MlmHead::forward(const float* x, int N) {
  const size_t n = static_cast<size_t>(N) * static_cast<size_t>(C_);
  be().matmul_forward(h_, x, P(w_), P(b_), N, C_, C_);
  activation_forward(be(), act_, h_act_, h_, n);
  decoder_.forward(ln_.forward(h_act_, N), N);
}

void MlmHead::backward(float* dx, const float* x, int N) {
  const size_t n = static_cast<size_t>(N) * static_cast<size_t>(C_);
  decoder_.backward(dy_, ln_.out(), N);  // summed over the group: the same on every rank
  be().zero(dh_, n * sizeof(float));
  ln_.backward(dh_, dy_, h_act_, N);  // d act(h)
  be().zero(dy_, n * sizeof(float));
  activation_backward(be(), act_, dy_, h_, dh_, n);  // d h
  be().zero(dx, n * sizeof(float));
  be().matmul_backward(dx, G(w_), G(b_), dy_, x, P(w_), N, C_, C_);
}

}  // namespace ph
