// Online softmax normaliser (Milakov & Gimelshein, 2018): the running maximum of a sequence
// and the sum of exp(x - maximum), updated one element at a time and merged between
// partial sequences, so that one pass over a row gives both. Shared per-row math.
#pragma once
#include <cmath>

#include "kernels/common/hostdevice.h"

namespace ph {

struct OnlineSoftmax {
  float max = -INFINITY;  // -inf while empty
  float sum = 0.0f;       // sum of exp(x - max) over the elements seen
};

// Adds x. -inf contributes nothing (also while empty); NaN makes the sum NaN.
PH_HD void online_softmax_add(OnlineSoftmax& s, float x) {
  if (x > s.max) {
    s.sum = s.sum * expf(s.max - x) + 1.0f;
    s.max = x;
  } else if (x != -INFINITY) {
    s.sum += expf(x - s.max);
  }
}

// The state of the two sequences together. Symmetric: merge(a, b) and merge(b, a) give the
// same sum bit for bit, so every lane of a butterfly reduction ends with the same value.
PH_HD OnlineSoftmax online_softmax_merge(const OnlineSoftmax& a, const OnlineSoftmax& b) {
  const float m = a.max > b.max ? a.max : b.max;
  if (m == -INFINITY) return OnlineSoftmax{m, a.sum + b.sum};
  return OnlineSoftmax{m, a.sum * expf(a.max - m) + b.sum * expf(b.max - m)};
}

}  // namespace ph
