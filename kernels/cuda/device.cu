#include "kernels/cuda/device.h"

#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ph::cuda {

DeviceInfo probe_cuda_devices() {
  DeviceInfo info;
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the error so that it does not surface in a later runtime call
    info.error = std::string("no CUDA device: ") + cudaGetErrorString(status) +
                 " (cudaGetDeviceCount returned " + std::to_string(static_cast<int>(status)) + ")";
    return info;
  }
  if (count < 1) {
    info.error = std::string("no CUDA device: ") + cudaGetErrorString(cudaErrorNoDevice) +
                 " (cudaGetDeviceCount found 0 devices)";
    return info;
  }
  info.count = count;
  return info;
}

void select_device(int local_rank) {
  const DeviceInfo info = probe_cuda_devices();
  if (info.count < 1) throw std::runtime_error(info.error);
  if (local_rank < 0) {
    throw std::runtime_error("select_device: negative local rank " + std::to_string(local_rank));
  }
  const int device = local_rank % info.count;
  const cudaError_t status = cudaSetDevice(device);
  if (status != cudaSuccess) {
    throw std::runtime_error("cudaSetDevice(" + std::to_string(device) +
                             ") failed: " + cudaGetErrorString(status));
  }
}

}  // namespace ph::cuda
