// The language-model head, vocab-parallel: logits [N, Vp/tp] = x [N, C] W^T (+ b) over this
// rank's rows of the (padded) vocabulary — W is the token embedding (tied) or its own
// <name>.weight [V, C]; a tied head may have a bias <name>.bias [V] (BERT's mlm.bias), split by
// vocabulary like W. The full logits never exist on one rank (VocabParallelLoss works on the
// shards).
#pragma once
#include <string>

#include "model/linear.h"

namespace ph {

class LmHead : public Block {
 public:
  // tied_weight >= 0: that parameter (wte [V, C], padded); else a new <name>.weight [V, C].
  // bias: <name>.bias [V] (tied heads only; std::logic_error otherwise).
  LmHead(ModelCore& core, int tied_weight, const std::string& name, int C, int V, int Vp,
         float init_std, int max_rows, bool bias = false);

  // logits() [N, local_vocab()] for x [N, C].
  void forward(const float* x, int N);
  // dx [N, C] overwritten with the full gradient of x, from the dlogits that VocabParallelLoss
  // left in logits(); the weight gradient accumulates.
  void backward(float* dx, const float* x, int N);

  float* logits() const { return logits_; }
  int local_vocab() const { return proj_.out_local(); }

 private:
  ColumnParallelLinear proj_;
  float* logits_ = nullptr;
};

}  // namespace ph
