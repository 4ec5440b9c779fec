// Residual connection on the GPU. Same contracts as kernels/cpu/residual.h on device pointers,
// queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>

namespace ph::cuda {

// out = a + b (out may alias a or b).
void residual_forward(float* out, const float* a, const float* b, size_t n, cudaStream_t stream);
// da += dout; db += dout (da may be db: then it receives 2 dout).
void residual_backward(float* da, float* db, const float* dout, size_t n, cudaStream_t stream);

}  // namespace ph::cuda
