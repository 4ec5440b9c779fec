// Softmax + cross-entropy over the vocabulary, fused.
#pragma once
#include <cstdint>

namespace ph::cpu {

// logits [N, Vp]: only the first V columns are real (Vp >= V is the padded width; padded
// columns never receive probability). targets [N]; a target equal to ignore_index gives
// loss 0 and no gradient. losses [N] = -log softmax(logits[n, :V])[targets[n]].
void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N,
                          int V, int Vp, int ignore_index);

// Forward and backward in one pass: writes losses [N] and overwrites logits with
// dlogits = (softmax - onehot(target)) * dloss for real columns, 0 for padded columns and for
// ignored rows. dloss is the same scale for every row (e.g. 1 / number of counted targets).
void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                        int V, int Vp, int ignore_index, float dloss);

}  // namespace ph::cpu
