// Error checks of the CUDA runtime and cuBLAS calls made by the host code of kernels/cuda: a
// failed call becomes std::runtime_error("<call> failed: <message>"). Host code.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <stdexcept>
#include <string>

namespace ph::cuda {

// Throws std::runtime_error("<call> failed: <cudaGetErrorString>") unless status is cudaSuccess.
// The runtime also keeps a failed call's status as its "last error"; it is cleared here, so
// that a later cudaGetLastError (kernel launches check it) does not report this failure again
// once the exception has been handled (sticky errors stay: they break the context for good).
inline void check_cuda(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  cudaGetLastError();
  throw std::runtime_error(std::string(call) + " failed: " + cudaGetErrorString(status));
}

// Throws std::runtime_error("<call> failed: <status name> (<status string>)") unless status is
// CUBLAS_STATUS_SUCCESS.
inline void check_cublas(cublasStatus_t status, const char* call) {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw std::runtime_error(std::string(call) + " failed: " + cublasGetStatusName(status) + " (" +
                           cublasGetStatusString(status) + ")");
}

}  // namespace ph::cuda
