// One residual sublayer around a body f (attention, cross-attention or the FFN), in either
// LayerNorm placement — written once for every sublayer of every model:
//   pre-norm  (GPT-2):           out = x + D(f(LN(x)))
//   post-norm (the Transformer): out = LN(x + D(f(x)))
// with D the dropout of the branch output. The body is passed as two callables:
//   forward(y, in):        y [N, C] = f(in)       (complete on every tensor-parallel rank)
//   backward(dx, dy, in):  dx [N, C] overwritten with d f / d in applied to dy
#pragma once
#include "io/config.h"
#include "model/layer_norm.h"
#include "model/pass.h"

namespace ph {

class ResidualBranch {
 public:
  ResidualBranch(ModelCore& core, Norm norm, LayerNorm& ln, const Dropout& dropout, int C,
                 int max_rows);

  // The stream after this sublayer (a buffer of this branch, valid until its next forward).
  template <class Body>
  const float* forward(const float* x, const Pass& pass, Body&& body) {
    const int N = pass.rows();
    body(branch_, pre_ ? ln_.forward(x, N) : x);
    dropout_.forward_residual(core_.be(), sum_, x, branch_, C_, pass);
    return pre_ ? sum_ : ln_.forward(sum_, N);
  }

  // dstream [N, C]: the gradient of this sublayer's output on entry, of its input x on exit.
  template <class Body>
  void backward(float* dstream, const float* x, const Pass& pass, Body&& body) {
    const int N = pass.rows();
    Backend& be = core_.be();
    if (pre_) {
      dropout_.backward(be, dy_, dstream, C_, pass);
      body(dx_, dy_, ln_.out());         // d(body input)
      ln_.backward(dstream, dx_, x, N);  // d x = d sum + LN backward
      return;
    }
    ln_.backward_into(dx_, dstream, sum_, N);  // through the LayerNorm: dx_ = d(sum)
    dropout_.backward(be, dy_, dx_, C_, pass);
    body(dstream, dy_, x);                                // d(body input), over d(out)
    be.residual_forward(dstream, dstream, dx_, size(N));  // d x = d(body input) + d sum
  }

 private:
  size_t size(int N) const { return static_cast<size_t>(N) * static_cast<size_t>(C_); }

  ModelCore& core_;
  bool pre_;
  LayerNorm& ln_;
  Dropout dropout_;
  int C_;
  float* sum_ = nullptr;     // x + D(f(.)), kept for backward (post-norm)
  float* branch_ = nullptr;  // f(.), shared: D regenerates its mask and backward never reads it
  float *dy_ = nullptr, *dx_ = nullptr;  // scratch
};

}  // namespace ph
