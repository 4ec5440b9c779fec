// DeviceOps on CUDA and NCCL: the real primitives under NcclCommunicator (ph_nccl, built only
// in the CUDA configuration). Also the NcclCommunicator constructor that uses them.
//
// The NCCL communicator is nonblocking (ncclConfig_t::blocking = 0): ncclCommInitRankConfig,
// the collectives and ncclCommFinalize may answer ncclInProgress, which NcclCommunicator
// settles by polling ncclCommGetAsyncError within its timeout — so that neither a rank that
// never joins nor a peer lost while NCCL connects can block the host forever. The destructor
// destroys the NCCL communicator (unless it was aborted), the events, the communication stream
// and the scratch word.
#pragma once
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <string>
#include <vector>

#include "parallel/nccl/device_ops.h"

namespace ph::nccl {

// The NCCL equivalents of the host-side enums (ReduceOp::Avg → ncclAvg).
ncclDataType_t nccl_data_type(DataType type);
ncclRedOp_t nccl_reduce_op(ReduceOp op);
// "<call>: <ncclGetErrorString> (ncclResult_t <code>)", plus ncclGetLastError's text when comm
// is not null and it has one.
std::string nccl_error_text(const char* call, ncclResult_t result, ncclComm_t comm);
// "<call>: <cudaGetErrorString> (<cudaGetErrorName>)".
std::string cuda_error_text(const char* call, cudaError_t error);

class CudaDeviceOps final : public DeviceOps {
 public:
  // Nothing is created before init(); `group` is used only there, for the unique id.
  CudaDeviceOps(MPI_Comm group, cudaStream_t compute_stream);
  ~CudaDeviceOps() override;

  OpStatus init(int events) override;
  OpStatus record(int event, Stream stream) override;
  OpStatus stream_wait(Stream waiter, int event) override;
  OpStatus enqueue(const CollectiveCall& call) override;
  OpStatus query(int event) override;
  OpStatus comm_state() override;
  OpStatus finalize() override;
  void abort() override;
  double now() override;
  void idle() override;
  float* scratch() override { return scratch_; }

 private:
  cudaStream_t stream(Stream s) const { return s == Stream::Compute ? compute_ : comm_stream_; }
  OpStatus nccl_status(const char* call, ncclResult_t result) const;

  MPI_Comm group_;
  cudaStream_t compute_;
  cudaStream_t comm_stream_ = nullptr;
  std::vector<cudaEvent_t> events_;
  float* scratch_ = nullptr;
  ncclComm_t comm_ = nullptr;
  bool aborted_ = false;
};

}  // namespace ph::nccl
