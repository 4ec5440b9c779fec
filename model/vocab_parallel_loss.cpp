#include "model/vocab_parallel_loss.h"

namespace ph {

VocabParallelLoss::VocabParallelLoss(ModelCore& core, int V, int max_rows) : core_(core), V_(V) {
  const size_t n = static_cast<size_t>(max_rows);
  core.plan().own(&losses_, n);
  if (core.tp().size > 1) {
    core.plan().own(&row_max_, n);
    core.plan().own(&sums_, 3 * n);
  }
}

void VocabParallelLoss::forward(float* logits, const int32_t* targets, int N, int Vl, int v0,
                                float smoothing, bool grad, float dloss) {
  Backend& be = core_.be();
  const TpGroup& tp = core_.tp();
  if (tp.size == 1) {
    if (grad)
      be.crossentropy_fused(logits, losses_, targets, N, V_, Vl, kIgnoreIndex, smoothing, dloss);
    else
      be.crossentropy_forward(losses_, logits, targets, N, V_, Vl, kIgnoreIndex, smoothing);
    return;
  }
  const size_t n = static_cast<size_t>(N);
  float* sum_exp = sums_;
  float* target_logit = sums_ + n;
  float* sum_logits = smoothing > 0.0f ? sums_ + 2 * n : nullptr;
  be.vp_crossentropy_max(row_max_, logits, N, Vl, v0, V_);
  tp.comm->all_reduce(row_max_, n, ReduceOp::Max);
  be.vp_crossentropy_sums(sum_exp, target_logit, sum_logits, logits, row_max_, targets, N, Vl, v0,
                          V_, kIgnoreIndex);
  tp.comm->all_reduce(sums_, (sum_logits ? 3 : 2) * n, ReduceOp::Sum);
  be.vp_crossentropy_finish(losses_, grad ? logits : nullptr, logits, row_max_, sum_exp,
                            target_logit, sum_logits, targets, N, Vl, v0, V_, kIgnoreIndex,
                            smoothing, dloss);
}

}  // namespace ph
