// BERT's masked-LM head, run on the gathered prediction rows only (as Megatron and NVIDIA's
// BERT do, instead of on every position):
//   logits [N, Vp/tp] = LN(act(x W^T + b)) wte_local^T + bias_local
// for x [N, C], the stack's output at the N prediction slots. The transform (dense, the model's
// activation, LayerNorm) is replicated on every tensor-parallel rank; the decoder is tied to the
// token table and, with its bias, split by vocabulary (VocabParallelLoss reads the shards).
// Parameters (HF BertForPreTraining's cls.predictions.*): mlm.dense.weight [C, C],
// mlm.dense.bias [C], mlm.ln.{weight,bias} [C], mlm.bias [V] (padded rows zero).
#pragma once

#include "io/config.h"
#include "model/layer_norm.h"
#include "model/lm_head.h"

namespace ph {

struct MlmHeadSpec {
  int C = 0, V = 0, Vp = 0;
  Activation activation = Activation::kGeluErf;
  float ln_eps = 1e-12f;
  float init_std = 0.02f;
  int max_rows = 0;  // prediction rows of a micro-batch at most
};

class MlmHead : public Block {
 public:
  // wte: the token table [V, C] (padded to Vp rows) the decoder is tied to.
  MlmHead(ModelCore& core, int wte, const MlmHeadSpec& spec);

  // logits() [N, local_vocab()] for x [N, C] (N <= max_rows).
  void forward(const float* x, int N);
  // dx [N, C] overwritten with the full gradient of x (identical on every tensor-parallel rank),
  // from the dlogits that VocabParallelLoss left in logits(); parameter gradients accumulate.
  void backward(float* dx, const float* x, int N);

  float* logits() const { return decoder_.logits(); }
  int local_vocab() const { return decoder_.local_vocab(); }

 private:
  int C_;
  Activation act_;
  int w_ = -1, b_ = -1;  // mlm.dense
  LayerNorm ln_;
  LmHead decoder_;
  float *h_ = nullptr, *h_act_ = nullptr;  // kept for backward [N, C]
  float *dy_ = nullptr, *dh_ = nullptr;    // scratch [N, C]
};

}  // namespace ph
