// BERT's sentence head on the [CLS] position (next-sentence or sentence-order prediction):
//   pooled = tanh(x W_p^T + b_p),  logits [B, 2] = pooled W_c^T + b_c,
// and the cross-entropy of the logits against a label per sequence (kIgnoreIndex: none).
// Replicated on every tensor-parallel rank (small; its input is the same everywhere), so its
// gradients are identical on every rank. Parameters (HF BertForPreTraining's bert.pooler.dense
// and cls.seq_relationship): pooler.weight [C, C], pooler.bias [C], cls.weight [2, C],
// cls.bias [2].
#pragma once
#include <cstdint>

#include "model/block.h"

namespace ph {

class SentenceClassifier : public Block {
 public:
  static constexpr int kClasses = 2;

  SentenceClassifier(ModelCore& core, int C, float init_std, int max_batch);

  // logits() [B, 2] and losses() [B] for x [B, C] against labels [B] (device).
  void forward(const float* x, const int32_t* labels, int B);
  // dx [B, C] overwritten with the gradient of x for dloss times the sum of the losses;
  // parameter gradients accumulate. Overwrites logits() with their gradient.
  void backward(float* dx, const float* x, const int32_t* labels, int B, float dloss);

  const float* logits() const { return logits_; }
  const float* losses() const { return losses_; }

 private:
  int C_;
  int pw_ = -1, pb_ = -1, cw_ = -1, cb_ = -1;
  float *pre_ = nullptr, *pooled_ = nullptr, *logits_ = nullptr, *losses_ = nullptr;  // kept
  float *dpooled_ = nullptr, *dpre_ = nullptr;                                        // scratch
};

}  // namespace ph
