// Label-smoothed cross-entropy, per row (Marian's definition, the same as PyTorch's
// CrossEntropyLoss(label_smoothing = eps)): the target distribution over the V real columns is
// q = (1 - eps) onehot(t) + eps / V, so with lse = log sum_j exp x_j
//   loss = (1 - eps) (lse - x_t) + eps (lse - mean_j x_j),
//   dloss / dx_j = p_j - (1 - eps) [j = t] - eps / V.
// Both backends compute a row's shifted sums (max subtracted) and finish it with these, so the
// last step is the same expression on either. eps = 0 never comes here: the kernels keep the
// plain cross-entropy's expressions on that branch (bit-identical to the unsmoothed loss).
#pragma once
#include "kernels/common/hostdevice.h"

namespace ph {

// The loss of a row from nll = lse - x_t, log_sum = log sum_j exp(x_j - max) and
// mean_minus_max = mean_j (x_j - max) (lse - mean_j x_j = log_sum - mean_minus_max).
PH_HD float smoothed_loss(float nll, float log_sum, float mean_minus_max, float eps) {
  return (1.0f - eps) * nll + eps * (log_sum - mean_minus_max);
}

// The uniform part of the target distribution times the gradient scale: eps / V * dloss,
// subtracted from every real column's gradient.
PH_HD float smoothing_uniform(float eps, int V, float dloss) {
  return eps / static_cast<float>(V) * dloss;
}

}  // namespace ph
