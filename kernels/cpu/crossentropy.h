// Softmax + cross-entropy over the vocabulary, fused.
#pragma once
#include <cstdint>

namespace ph::cpu {

// logits [N, Vp]: only the first V columns are real (Vp >= V is the padded width; padded
// columns never receive probability). targets [N]; a target equal to ignore_index gives
// loss 0 and no gradient, a target outside [0, V) a NaN loss and no gradient.
//
// Label smoothing eps (Marian's definition, which is also PyTorch's
// CrossEntropyLoss(label_smoothing=eps)): the target distribution is
// q = (1 - eps) onehot(target) + eps / V over the V real columns, and
//   losses[n] = -sum_j q_j log p_j = (1 - eps) (-log p_target) + eps mean_j (-log p_j),
//   dlogits   = (p - q) * dloss.
// eps = 0 is the plain cross-entropy -log softmax(logits[n, :V])[targets[n]].
void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                          int Vp, int ignore_index, float smoothing);

// Forward and backward in one pass: writes losses [N] and overwrites logits with
// dlogits = (p - q) * dloss for real columns, 0 for padded columns and for ignored rows. dloss
// is the same scale for every row (e.g. 1 / number of counted targets).
void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                        int V, int Vp, int ignore_index, float smoothing, float dloss);

// Vocab-parallel cross-entropy (Megatron's scheme): a tensor-parallel rank holds the logits
// of padded-vocabulary columns [v0, v0 + Vl) only; V is the real vocabulary (columns >= V are
// padding and never receive probability). The full logits never exist on one rank: three
// phases exchange one number per row, with an all-reduce between phases done by the caller.
// With one rank (v0 = 0, Vl = Vp) the three phases equal crossentropy_fused.

// Phase 1: row_max [N] = max over the real columns held here (-inf if none). Then MAX-reduce.
void vp_crossentropy_max(float* row_max, const float* logits, int N, int Vl, int v0, int V);

// Phase 2: sum_exp [N] = sum over real local columns of exp(x - row_max); target_logit [N] =
// the target's logit if this rank holds it, else 0 (0 for ignored rows); sum_logits [N] (only
// when non-null: label smoothing needs it) = sum over real local columns of x - row_max. Then
// SUM-reduce them (callers keep them adjacent and reduce them in one call).
void vp_crossentropy_sums(float* sum_exp, float* target_logit, float* sum_logits,
                          const float* logits, const float* row_max, const int32_t* targets, int N,
                          int Vl, int v0, int V, int ignore_index);

// Phase 3: losses [N] as crossentropy_forward with smoothing eps (sum_logits is read only when
// eps > 0). If dlogits is non-null it receives, on the local columns, (p - q) * dloss (0 on
// padded columns and ignored rows); it may alias logits.
void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                            const float* row_max, const float* sum_exp, const float* target_logit,
                            const float* sum_logits, const int32_t* targets, int N, int Vl, int v0,
                            int V, int ignore_index, float smoothing, float dloss);

}  // namespace ph::cpu
