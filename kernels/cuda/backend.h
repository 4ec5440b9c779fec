// The CUDA backend (kernels/backend.h) on one device: cudaMalloc memory, and the ops of
// kernels/cuda queued in issue order on one compute stream of that device. Host code: it
// includes only the CUDA runtime API header (plain C++), so the trainer and the NCCL
// communicator include it without nvcc.
//
// Threads: the backend makes its device current on the thread that creates it; call it from
// that thread (every call uses the calling thread's current device).
#pragma once
#include <cuda_runtime_api.h>

#include <memory>

#include "kernels/backend.h"

namespace ph::cuda {

// What the CUDA backend adds to the interface, for code that queues its own CUDA work (NCCL
// collectives, events) in order with the ops.
class CudaBackend : public Backend {
 public:
  Device device() const override { return Device::Cuda; }
  // The non-blocking stream that runs every op, zero, copy and upload in issue order; owned by
  // the backend (valid until it is destroyed). Work another component queues on it, or orders
  // after it with events, is ordered with the ops.
  virtual cudaStream_t compute_stream() const = 0;
  // The ordinal of the device the backend runs on.
  virtual int device_ordinal() const = 0;
};

// The CUDA backend on device local_rank % count (select_device, kernels/cuda/device.h), its
// linear layer computing in `precision` (bf16: cuBLAS bf16 x bf16 -> fp32 GEMMs on operand
// copies in device scratch of the backend, kernels/cuda/backend.cu).
// Throws std::runtime_error when there is no device or a CUDA / cuBLAS call fails.
std::unique_ptr<Backend> make_cuda_backend(int local_rank,
                                           GemmPrecision precision = GemmPrecision::Fp32);

// The compute stream of a backend made by make_cuda_backend; std::invalid_argument for any
// other backend.
cudaStream_t compute_stream(const Backend& be);

}  // namespace ph::cuda
