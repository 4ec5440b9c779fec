// The launcher the .cu files hand to the kernel drivers (impl:: functions of the
// *_kernels.cuh headers): it launches on a stream and turns a launch error into an exception.
// The host tests hand the same drivers the shim's launcher instead. nvcc only.
#pragma once
#include <cuda_runtime.h>

#include <utility>

#include "kernels/cuda/check.h"

namespace ph::cuda {

struct StreamLauncher {
  cudaStream_t stream;

  template <typename... Params, typename... Args>
  void operator()(dim3 grid, dim3 block, void (*kernel)(Params...), Args&&... args) const {
    kernel<<<grid, block, 0, stream>>>(std::forward<Args>(args)...);
    check_cuda(cudaGetLastError(), "CUDA kernel launch");
  }
};

}  // namespace ph::cuda
