// AdamW over a flat buffer and the squared norm used for gradient clipping.
#pragma once
#include <cstddef>

#include "kernels/common/adamw.h"

namespace ph::cpu {

// Updates params [n] in place with grads [n] and moments m, v [n]; math in common/adamw.h.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                  const AdamWParams& a);

// adamw_update on each range of the four buffers with the range's weight decay, in one
// parallel region (one wake-up of the threads for every parameter tensor, not one per tensor).
void adamw_update_ranges(float* params, const float* grads, float* m, float* v,
                         const AdamWRange* ranges, size_t count, const AdamWParams& a);

// Sum of squares of x [n], accumulated in double. Deterministic for any thread count.
double sum_squares(const float* x, size_t n);

// out[i] = sum_squares(x + begin[i], end[i] - begin[i]), bit for bit, for i < count, in one
// parallel region.
void sum_squares_ranges(double* out, const float* x, const size_t* begin, const size_t* end,
                        size_t count);

// True when every x[i] is finite.
bool all_finite(const float* x, size_t n);

}  // namespace ph::cpu
