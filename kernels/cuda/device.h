// Which CUDA devices this process can use. Host-only: the trainer includes it without the CUDA
// headers, and it links from ph_cuda.
#pragma once
#include <string>

namespace ph::cuda {

struct DeviceInfo {
  int count = 0;      // visible devices; 0 when there is none or no driver
  std::string error;  // empty when count > 0
};

// Asks the CUDA runtime how many devices there are. Without a driver or a device, count is 0
// and error reads "no CUDA device: <runtime message> (cudaGetDeviceCount returned <code>)".
DeviceInfo probe_cuda_devices();

// Makes device local_rank % count current for this thread (ranks of a node share its devices
// round-robin). Throws std::runtime_error with the probe's message when there is no device, or
// the runtime's when the device cannot be selected.
void select_device(int local_rank);

}  // namespace ph::cuda
