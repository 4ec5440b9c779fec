// LayerNorm over the model width, as a block: parameters <name>.weight [C] (ones) and
// <name>.bias [C] (zeros, when the model has biases), replicated on every tensor-parallel rank;
// it keeps its output and the row statistics for backward.
#pragma once
#include <string>

#include "model/block.h"

namespace ph {

class LayerNorm : public Block {
 public:
  // eps: added to the variance (model.layer_norm_eps).
  LayerNorm(ModelCore& core, const std::string& name, int C, bool bias, int max_rows, float eps);

  // out() [N, C] = LayerNorm(x [N, C]).
  float* forward(const float* x, int N);
  // Accumulates dx [N, C] (+=) and the parameter gradients from dy [N, C]; x is the forward's
  // input.
  void backward(float* dx, const float* dy, const float* x, int N);
  // The same, overwriting dx [N, C] instead of adding to it.
  void backward_into(float* dx, const float* dy, const float* x, int N);
  float* out() const { return out_; }

 private:
  int C_;
  float eps_;
  int w_ = -1, b_ = -1;
  float *out_ = nullptr, *mean_ = nullptr, *rstd_ = nullptr;
};

}  // namespace ph
