// The position-wise feed-forward network: y = proj(act(fc(x))), fc column-parallel (each
// tensor-parallel rank holds F/tp hidden units), proj row-parallel. Parameters (<p> the block's
// prefix, e.g. "h.0.mlp."): <p>fc.weight [F, C], <p>fc.bias [F], <p>proj.weight [C, F],
// <p>proj.bias [C].
#pragma once
#include <string>

#include "io/config.h"
#include "model/linear.h"

namespace ph {

struct MlpSpec {
  int C = 0, F = 0;
  Activation activation = Activation::kGelu;
  bool bias = true;
  float init_std = 0.02f;  // fc
  float proj_std = 0.02f;  // proj
  int max_rows = 0;
};

class Mlp : public Block {
 public:
  Mlp(ModelCore& core, const std::string& prefix, const MlpSpec& spec);

  // y [N, C] = proj(act(fc(x [N, C]))), complete on every rank.
  void forward(float* y, const float* x, int N);
  // dx [N, C] overwritten with the full input gradient; parameter gradients accumulate.
  void backward(float* dx, const float* dy, const float* x, int N);

 private:
  Activation act_;
  int Fl_;
  ColumnParallelLinear fc_;
  RowParallelLinear proj_;
  float *h_ = nullptr, *h_act_ = nullptr;    // kept for backward [N, F/tp]
  float *dh_ = nullptr, *dh_pre_ = nullptr;  // scratch
};

}  // namespace ph
