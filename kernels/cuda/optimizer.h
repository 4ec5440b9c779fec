// AdamW over a flat buffer and the reductions used for clipping and fault detection, on the
// GPU. Same math as kernels/cpu/optimizer.h on device pointers, queued on `stream`; the
// reductions write their result to device memory (no host synchronisation).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

#include "kernels/common/adamw.h"

namespace ph::cuda {

// Updates params [n] in place with grads [n] and moments m, v [n]; math in common/adamw.h.
void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                  const AdamWParams& a, cudaStream_t stream);

// Doubles of device scratch that sum_squares needs for n elements (at most 1024).
size_t sum_squares_scratch_size(size_t n);

// *result (one device double) = sum of squares of x [n], accumulated in double. Per-block
// partial sums go to scratch [sum_squares_scratch_size(n)], then one block adds them in
// order: deterministic, no atomics.
void sum_squares(double* result, const float* x, size_t n, double* scratch, cudaStream_t stream);

// *result (one device int) = 1 when every x[i] is finite, else 0.
void all_finite(int* result, const float* x, size_t n, cudaStream_t stream);

}  // namespace ph::cuda
