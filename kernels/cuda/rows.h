// Row gather and scatter-add on the GPU. Same contracts as kernels/cpu/rows.h on device
// pointers (rows is device memory), queued on `stream`.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace ph::cuda {

// out [n, C]: out[i, :] = inp[rows[i], :].
void gather_rows(float* out, const float* inp, const int32_t* rows, int n, int C,
                 cudaStream_t stream);

// dinp[rows[i], :] += dout[i, :] for i < n; the rows must be distinct.
void scatter_add_rows(float* dinp, const float* dout, const int32_t* rows, int n, int C,
                      cudaStream_t stream);

}  // namespace ph::cuda
