#include "parallel/nccl/cuda_device_ops.h"

#include <chrono>
#include <memory>
#include <stdexcept>
#include <thread>

#include "parallel/nccl/nccl_communicator.h"

static_assert(
    NCCL_VERSION_CODE >= NCCL_VERSION(2, 14, 0),
    "nonblocking communicators (ncclCommInitRankConfig, ncclCommFinalize) need NCCL 2.14 or later");

namespace ph {
namespace nccl {

ncclDataType_t nccl_data_type(DataType type) {
  switch (type) {
    case DataType::Float32:
      return ncclFloat32;
    case DataType::Float64:
      return ncclFloat64;
    case DataType::Int64:
      return ncclInt64;
    case DataType::Char:
      return ncclChar;
  }
  throw std::logic_error("unknown nccl::DataType");
}

ncclRedOp_t nccl_reduce_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return ncclSum;
    case ReduceOp::Max:
      return ncclMax;
    case ReduceOp::Min:
      return ncclMin;
    case ReduceOp::Avg:
      return ncclAvg;
  }
  throw std::logic_error("unknown ReduceOp");
}

std::string nccl_error_text(const char* call, ncclResult_t result, ncclComm_t comm) {
  std::string text = std::string(call) + ": " + ncclGetErrorString(result) + " (ncclResult_t " +
                     std::to_string(static_cast<int>(result)) + ")";
  if (comm != nullptr) {
    const char* last = ncclGetLastError(comm);
    if (last != nullptr && *last != '\0') text += "; NCCL: " + std::string(last);
  }
  return text;
}

std::string cuda_error_text(const char* call, cudaError_t error) {
  return std::string(call) + ": " + cudaGetErrorString(error) + " (" + cudaGetErrorName(error) +
         ")";
}

namespace {

OpStatus cuda_status(const char* call, cudaError_t error) {
  return error == cudaSuccess ? OpStatus::ok() : OpStatus::failed(cuda_error_text(call, error));
}

}  // namespace

CudaDeviceOps::CudaDeviceOps(MPI_Comm group, cudaStream_t compute_stream)
    : group_(group), compute_(compute_stream) {}

CudaDeviceOps::~CudaDeviceOps() {
  if (comm_ != nullptr && !aborted_ && ncclCommDestroy(comm_) != ncclSuccess) ncclCommAbort(comm_);
  for (cudaEvent_t event : events_)
    if (event != nullptr) cudaEventDestroy(event);
  if (comm_stream_ != nullptr) cudaStreamDestroy(comm_stream_);
  if (scratch_ != nullptr) cudaFree(scratch_);
}

OpStatus CudaDeviceOps::init(int events) {
  int rank = 0, size = 1;
  if (MPI_Comm_rank(group_, &rank) != MPI_SUCCESS || MPI_Comm_size(group_, &size) != MPI_SUCCESS)
    return OpStatus::failed("MPI_Comm_rank / MPI_Comm_size of the group failed");
  int version = 0;
  if (ncclGetVersion(&version) != ncclSuccess || version < NCCL_VERSION(2, 14, 0))
    return OpStatus::failed(
        "the NCCL library loaded (version code " + std::to_string(version) +
        ") is older than 2.14, which nonblocking communicators and ncclCommFinalize need");

  if (OpStatus s = cuda_status("cudaStreamCreateWithFlags",
                               cudaStreamCreateWithFlags(&comm_stream_, cudaStreamNonBlocking));
      !s.is_ok())
    return s;
  events_.assign(static_cast<size_t>(events), nullptr);
  for (cudaEvent_t& event : events_)
    if (OpStatus s = cuda_status("cudaEventCreateWithFlags",
                                 cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
        !s.is_ok())
      return s;
  void* scratch = nullptr;
  if (OpStatus s = cuda_status("cudaMalloc", cudaMalloc(&scratch, sizeof(float))); !s.is_ok())
    return s;
  scratch_ = static_cast<float*>(scratch);
  if (OpStatus s = cuda_status("cudaMemset", cudaMemset(scratch_, 0, sizeof(float))); !s.is_ok())
    return s;

  // Rank 0 creates the id; a failure there ends the job (fatal_exit aborts MPI), so the other
  // ranks never wait in MPI_Bcast for an id that will not come.
  ncclUniqueId id{};
  if (rank == 0) {
    const ncclResult_t r = ncclGetUniqueId(&id);
    if (r != ncclSuccess) return OpStatus::failed(nccl_error_text("ncclGetUniqueId", r, nullptr));
  }
  if (MPI_Bcast(&id, static_cast<int>(sizeof(id)), MPI_BYTE, 0, group_) != MPI_SUCCESS)
    return OpStatus::failed("MPI_Bcast of the NCCL unique id failed");

  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;
  return nccl_status("ncclCommInitRankConfig",
                     ncclCommInitRankConfig(&comm_, size, id, rank, &config));
}

OpStatus CudaDeviceOps::record(int event, Stream s) {
  return cuda_status("cudaEventRecord",
                     cudaEventRecord(events_[static_cast<size_t>(event)], stream(s)));
}

OpStatus CudaDeviceOps::stream_wait(Stream waiter, int event) {
  return cuda_status("cudaStreamWaitEvent",
                     cudaStreamWaitEvent(stream(waiter), events_[static_cast<size_t>(event)], 0));
}

OpStatus CudaDeviceOps::enqueue(const CollectiveCall& c) {
  const ncclDataType_t type = nccl_data_type(c.type);
  switch (c.kind) {
    case Collective::AllReduce:
      return nccl_status("ncclAllReduce", ncclAllReduce(c.send, c.recv, c.count, type,
                                                        nccl_reduce_op(c.op), comm_, comm_stream_));
    case Collective::AllGather:
      return nccl_status("ncclAllGather",
                         ncclAllGather(c.send, c.recv, c.count, type, comm_, comm_stream_));
    case Collective::ReduceScatter:
      return nccl_status("ncclReduceScatter",
                         ncclReduceScatter(c.send, c.recv, c.count, type, nccl_reduce_op(c.op),
                                           comm_, comm_stream_));
    case Collective::Broadcast:
      return nccl_status("ncclBroadcast",
                         ncclBroadcast(c.send, c.recv, c.count, type, c.root, comm_, comm_stream_));
  }
  throw std::logic_error("unknown nccl::Collective");
}

OpStatus CudaDeviceOps::query(int event) {
  const cudaError_t e = cudaEventQuery(events_[static_cast<size_t>(event)]);
  if (e == cudaErrorNotReady) {
    // Not an error: clear it, so that code checking cudaGetLastError() after its own launches
    // does not see it.
    (void)cudaGetLastError();
    return OpStatus::pending();
  }
  return cuda_status("cudaEventQuery", e);
}

OpStatus CudaDeviceOps::comm_state() {
  ncclResult_t state = ncclSuccess;
  const ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
  if (r != ncclSuccess) return OpStatus::failed(nccl_error_text("ncclCommGetAsyncError", r, comm_));
  return nccl_status("asynchronous NCCL error", state);
}

OpStatus CudaDeviceOps::finalize() {
  return nccl_status("ncclCommFinalize", ncclCommFinalize(comm_));
}

void CudaDeviceOps::abort() {
  if (comm_ == nullptr || aborted_) return;
  aborted_ = true;
  ncclCommAbort(comm_);
  comm_ = nullptr;
}

double CudaDeviceOps::now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void CudaDeviceOps::idle() {
  std::this_thread::yield();
}

OpStatus CudaDeviceOps::nccl_status(const char* call, ncclResult_t result) const {
  if (result == ncclSuccess) return OpStatus::ok();
  if (result == ncclInProgress) return OpStatus::pending();
  return OpStatus::failed(nccl_error_text(call, result, comm_));
}

}  // namespace nccl

namespace {

int group_rank(MPI_Comm group) {
  int rank = 0;
  MPI_Comm_rank(group, &rank);
  return rank;
}

int group_size(MPI_Comm group) {
  int size = 1;
  MPI_Comm_size(group, &size);
  return size;
}

}  // namespace

NcclCommunicator::NcclCommunicator(MPI_Comm group, CUstream_st* compute_stream,
                                   double timeout_seconds)
    : NcclCommunicator(std::make_unique<nccl::CudaDeviceOps>(group, compute_stream),
                       group_rank(group), group_size(group), timeout_seconds) {}

}  // namespace ph
