// Cross-entropy over vocab-parallel logits (Megatron's scheme): each tensor-parallel rank holds
// the logits of its columns of the padded vocabulary; the row maximum, the sum of
// exponentials, the target's logit (and, with label smoothing, the sum of the logits) are
// combined over the group with two all-reduces, so the full logits never exist on one rank.
// Targets equal to kIgnoreIndex have no loss and no gradient. Label smoothing eps follows
// Marian's definition (kernels/cpu/crossentropy.h): the target distribution is
// (1 - eps) onehot + eps / V.
#pragma once
#include <cstdint>

#include "model/model_core.h"

namespace ph {

constexpr int32_t kIgnoreIndex = -1;

class VocabParallelLoss {
 public:
  VocabParallelLoss(ModelCore& core, int V, int max_rows);

  // losses() [N] of logits [N, Vl] (this rank's columns [v0, v0 + Vl) of the padded vocabulary)
  // against targets [N] (device). With grad, logits are overwritten with (p - q) * dloss, the
  // gradient of dloss times the sum of the losses.
  void forward(float* logits, const int32_t* targets, int N, int Vl, int v0, float smoothing,
               bool grad, float dloss);
  const float* losses() const { return losses_; }

 private:
  ModelCore& core_;
  int V_;
  float* losses_ = nullptr;
  float* row_max_ = nullptr;  // [N], tensor parallelism only
  float* sums_ = nullptr;     // [3, N]: sum of exponentials, target logit, sum of logits
};

}  // namespace ph
