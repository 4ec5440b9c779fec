// Residual connection on the GPU. Same contracts as kernels/cpu/residual.h on device pointers,
// queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

namespace ph::cuda {

// out = a + b (out may alias a or b).
void residual_forward(float* out, const float* a, const float* b, size_t n, cudaStream_t stream);

}  // namespace ph::cuda
