// AdamW element update (Loshchilov & Hutter, decoupled weight decay), shared by backends.
#pragma once
#include <cmath>
#include <cstddef>

#include "kernels/common/hostdevice.h"

namespace ph {

struct AdamWParams {
  float lr;  // learning rate of this step
  float beta1;
  float beta2;
  float eps;
  float weight_decay;      // decoupled: p -= lr * wd * p (0 for parameters without decay)
  float bias_correction1;  // 1 - beta1^t
  float bias_correction2;  // 1 - beta2^t
  float grad_scale;        // multiplies the gradient first (clipping factor)
};

// Updates one parameter p with gradient g and moments m, v in place.
PH_HD void adamw_element(float& p, float g, float& m, float& v, const AdamWParams& a) {
  g *= a.grad_scale;
  m = a.beta1 * m + (1.0f - a.beta1) * g;
  v = a.beta2 * v + (1.0f - a.beta2) * g * g;
  const float mhat = m / a.bias_correction1;
  const float vhat = v / a.bias_correction2;
  p -= a.lr * (mhat / (sqrtf(vhat) + a.eps) + a.weight_decay * p);
}

// Elements [begin, end) of the flat buffers of one AdamW call over many tensors, with the
// weight decay of that tensor (Backend::adamw_update_ranges).
struct AdamWRange {
  size_t begin = 0, end = 0;
  float weight_decay = 0.0f;
};

}  // namespace ph
