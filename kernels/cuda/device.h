// Which CUDA devices this process can use. Host-only: the trainer includes it without the CUDA
// headers, and it links from ph_cuda.
#pragma once
#include <cstdint>
#include <string>

namespace ph::cuda {

struct DeviceInfo {
  int count = 0;      // visible devices; 0 when there is none or no driver
  std::string error;  // empty when count > 0
};

// Asks the CUDA runtime how many devices there are. Without a driver or a device, count is 0
// and error reads "no CUDA device: <runtime message> (cudaGetDeviceCount returned <code>)".
DeviceInfo probe_cuda_devices();

// The visible device that local rank local_rank of a node takes among `count` (> 0): ranks of a
// node share its devices round-robin, local_rank % count. Two ranks of a node therefore land on
// one GPU when the node has more ranks than GPUs (trainer/gpu_placement.h refuses that).
constexpr int device_for(int local_rank, int count) {
  return local_rank % count;
}

// A positive number that names the physical GPU behind visible device `device`: its PCI domain,
// bus and device numbers (what NCCL's "duplicate GPU" check compares). Two processes get the same
// key exactly when they would use the same GPU, whatever their CUDA_VISIBLE_DEVICES (device 0 of
// one may be device 1 of another). Throws std::runtime_error with the runtime's message.
int64_t physical_gpu_key(int device);

// Makes device device_for(local_rank, count) current for this thread. Throws std::runtime_error
// with the probe's message when there is no device, or the runtime's when the device cannot be
// selected.
void select_device(int local_rank);

}  // namespace ph::cuda
