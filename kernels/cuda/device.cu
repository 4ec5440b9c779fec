#include "kernels/cuda/device.h"

#include <cuda_runtime.h>

#include <cstdint>
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

int64_t physical_gpu_key(int device) {
  const cudaDeviceAttr attributes[3] = {cudaDevAttrPciDomainId, cudaDevAttrPciBusId,
                                        cudaDevAttrPciDeviceId};
  int64_t key = 0;
  for (const cudaDeviceAttr attribute : attributes) {
    int value = 0;
    const cudaError_t status = cudaDeviceGetAttribute(&value, attribute, device);
    if (status != cudaSuccess) {
      cudaGetLastError();
      throw std::runtime_error("cudaDeviceGetAttribute(PCI address of device " +
                               std::to_string(device) + ") failed: " + cudaGetErrorString(status));
    }
    // domain (32 bits) . bus (8 bits) . device (5 bits): one byte each below the domain.
    key = key * 256 + static_cast<int64_t>(static_cast<uint32_t>(value));
  }
  return key + 1;  // positive even for 0000:00:00
}

void select_device(int local_rank) {
  const DeviceInfo info = probe_cuda_devices();
  if (info.count < 1) throw std::runtime_error(info.error);
  if (local_rank < 0) {
    throw std::runtime_error("select_device: negative local rank " + std::to_string(local_rank));
  }
  const int device = device_for(local_rank, info.count);
  const cudaError_t status = cudaSetDevice(device);
  if (status != cudaSuccess) {
    throw std::runtime_error("cudaSetDevice(" + std::to_string(device) +
                             ") failed: " + cudaGetErrorString(status));
  }
}

}  // namespace ph::cuda
