// Per-element activation math shared by the CPU and CUDA backends.
#pragma once
#include <cmath>

#include "kernels/common/hostdevice.h"

namespace ph {

// GELU, tanh approximation (as in GPT-2): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
PH_HD float gelu(float x) {
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  const float u = k * (x + 0.044715f * x * x * x);
  return 0.5f * x * (1.0f + tanhf(u));
}

// d gelu(x) / dx for the tanh approximation.
PH_HD float gelu_grad(float x) {
  const float k = 0.7978845608028654f;
  const float x2 = x * x;
  const float u = k * (x + 0.044715f * x2 * x);
  const float t = tanhf(u);
  const float sech2 = 1.0f - t * t;
  return 0.5f * (1.0f + t) + 0.5f * x * sech2 * k * (1.0f + 3.0f * 0.044715f * x2);
}

// GELU, exact (as in BERT): x Phi(x) = 0.5 x (1 + erf(x / sqrt(2))).
PH_HD float gelu_erf(float x) {
  return 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
}

// d gelu_erf(x) / dx = Phi(x) + x phi(x), phi the standard normal density.
PH_HD float gelu_erf_grad(float x) {
  const float cdf = 0.5f * (1.0f + erff(x * 0.7071067811865476f));
  return cdf + x * 0.3989422804014327f * expf(-0.5f * x * x);
}

// tanh (BERT's pooler); its derivative from the input: 1 - tanh(x)^2.
PH_HD float tanh_act(float x) {
  return tanhf(x);
}
PH_HD float tanh_grad(float x) {
  const float t = tanhf(x);
  return 1.0f - t * t;
}

PH_HD float relu(float x) {
  return x > 0.0f ? x : 0.0f;
}
PH_HD float relu_grad(float x) {
  return x > 0.0f ? 1.0f : 0.0f;
}

}  // namespace ph
