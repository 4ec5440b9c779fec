// One residual sublayer around a body f (attention, cross-attention or the FFN), in either
// LayerNorm placement — written once for every sublayer of every model:
//   pre-norm  (GPT-2):           out = x + D(f(LN(x)))
//   post-norm (the Transformer): out = LN(x + D(f(x)))
// with D the dropout of the branch output. The body is passed as two callables:
//   forward(y, in):        y [N, C] = f(in)       (complete on every tensor-parallel rank)
//   backward(dx, dy, in):  dx [N, C] overwritten with d f / d in applied to dy
// With an output pass `out` (rows selected from an unpacked input pass, model/pass.h), the
// body reads all N input rows but writes out->rows() rows, and the branch's output holds
// those rows only: out = LN(x[sel] + D(f(x))) or x[sel] + D(f(LN(x))). Backward then takes
// the gradient of the selected rows and returns that of all N input rows.
#pragma once
#include "io/config.h"
#include "model/layer_norm.h"
#include "model/pass.h"

namespace ph {

class ResidualBranch {
 public:
  // select: forward may be given an output pass (plans the gathered input rows).
  ResidualBranch(ModelCore& core, Norm norm, LayerNorm& ln, const Dropout& dropout, int C,
                 int max_rows, bool select = false);

  // The stream after this sublayer (a buffer of this branch, valid until its next forward).
  template <class Body>
  const float* forward(const float* x, const Pass& pass, Body&& body, const Pass* out = nullptr) {
    const Pass& o = output_pass(pass, out);
    body(branch_, pre_ ? ln_.forward(x, pass.rows()) : x);
    const float* xs = x;  // the input rows of the output's
    if (out) {
      core_.be().gather_rows(sel_, x, out->packed.pack, o.rows(), C_);
      xs = sel_;
    }
    dropout_.forward_residual(core_.be(), sum_, xs, branch_, C_, o);
    return pre_ ? sum_ : ln_.forward(sum_, o.rows());
  }

  // dstream [N, C]: the gradient of this sublayer's output on entry (out: of its rows), of
  // its input x on exit (room for N rows).
  template <class Body>
  void backward(float* dstream, const float* x, const Pass& pass, Body&& body,
                const Pass* out = nullptr) {
    const int N = pass.rows();
    const Pass& o = output_pass(pass, out);
    Backend& be = core_.be();
    if (pre_) {
      dropout_.backward(be, dy_, dstream, C_, o);
      body(dx_, dy_, ln_.out());  // d(body input)
      if (out) {                  // d sum, zero on the rows the output does not hold
        be.gather_rows(dy_, dstream, out->packed.unpack, N, C_);
        be.copy(dstream, dy_, size(N) * sizeof(float));
      }
      ln_.backward(dstream, dx_, x, N);  // d x = d sum + LN backward
      return;
    }
    ln_.backward_into(dx_, dstream, sum_, o.rows());  // through the LayerNorm: dx_ = d(sum)
    dropout_.backward(be, dy_, dx_, C_, o);
    body(dstream, dy_, x);  // d(body input), over d(out)
    if (out)                // d x = d(body input) + d sum
      be.scatter_add_rows(dstream, dx_, out->packed.pack, o.rows(), C_);
    else
      be.residual_forward(dstream, dstream, dx_, size(N));
  }

 private:
  size_t size(int N) const { return static_cast<size_t>(N) * static_cast<size_t>(C_); }
  const Pass& output_pass(const Pass& pass, const Pass* out) const;

  ModelCore& core_;
  bool pre_;
  LayerNorm& ln_;
  Dropout dropout_;
  int C_;
  float* sum_ = nullptr;     // x + D(f(.)), kept for backward (post-norm)
  float* branch_ = nullptr;  // f(.), shared: D regenerates its mask and backward never reads it
  float *dy_ = nullptr, *dx_ = nullptr;  // scratch
  float* sel_ = nullptr;                 // scratch: the input rows of a selected output
};

}  // namespace ph
