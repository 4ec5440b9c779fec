// Residual connection: a sum forward, a copy of the gradient to both inputs backward.
#include "kernels/cpu/residual.h"

namespace ph::cpu {

void residual_forward(float* out, const float* a, const float* b, size_t n) {
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

void residual_backward(float* da, float* db, const float* dout, size_t n) {
  // da and db may be the same buffer (out = x + x): two separate += are then still right.
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; ++i) {
    da[i] += dout[i];
    db[i] += dout[i];
  }
}

}  // namespace ph::cpu
