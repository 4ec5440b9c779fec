// AdamW over a flat buffer and the squared norm used for gradient clipping.
#pragma once
#include <cstddef>

#include "kernels/common/adamw.h"

namespace ph::cpu {

// Updates params [n] in place with grads [n] and moments m, v [n]; math in common/adamw.h.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                  const AdamWParams& a);

// Sum of squares of x [n], accumulated in double. Deterministic for any thread count.
double sum_squares(const float* x, size_t n);

// True when every x[i] is finite.
bool all_finite(const float* x, size_t n);

}  // namespace ph::cpu
