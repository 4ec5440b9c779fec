// The primitive device operations that NcclCommunicator is built from: events on two streams,
// one NCCL call, an event query, the communicator's state, abort, and a clock. The real
// implementation (cuda_device_ops.h) calls CUDA and NCCL; the tests use a fake that records the
// calls and decides when events complete or errors appear, so that everything the communicator
// decides (slot pool, issue order, event bookkeeping, polling with timeout, the abort-then-fatal
// path, argument checks) runs without a GPU. No CUDA or NCCL header is included here.
//
// Every operation reports through an OpStatus instead of throwing:
//   Ok       done (query: the event has completed);
//   Pending  not yet (query: the event has not completed; enqueue, init, finalize: NCCL
//            returned ncclInProgress and comm_state() must be polled until Ok before the next
//            NCCL call or anything else is put on the communication stream);
//   Failed   a CUDA or NCCL error; `error` names the call and carries the library's message.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "parallel/communicator.h"

namespace ph::nccl {

// The compute stream belongs to the caller (kernels run there); the communication stream
// belongs to the communicator and carries only NCCL calls and event records.
enum class Stream : uint8_t { Compute, Comm };

// Element types as the host sees them; the real implementation maps them to ncclDataType_t.
enum class DataType : uint8_t { Float32, Float64, Int64, Char };

enum class Collective : uint8_t { AllReduce, AllGather, ReduceScatter, Broadcast };

// One NCCL call, with NCCL's own meaning of the arguments:
//   AllReduce      send == recv [count] (in place), op;
//   AllGather      send [count] → recv [size * count]; in place when send == recv + rank * count;
//   ReduceScatter  send [size * count] → recv [count], op;
//   Broadcast      send == recv [count] (in place), root.
// count is a size_t, as NCCL takes it: no operation is ever split into chunks.
struct CollectiveCall {
  Collective kind = Collective::AllReduce;
  const void* send = nullptr;
  void* recv = nullptr;
  size_t count = 0;
  DataType type = DataType::Float32;
  ReduceOp op = ReduceOp::Sum;  // AllReduce and ReduceScatter; Avg maps to ncclAvg
  int root = 0;                 // Broadcast
};

class [[nodiscard]] OpStatus {
 public:
  enum class Code : uint8_t { Ok, Pending, Failed };

  static OpStatus ok() { return OpStatus(Code::Ok, {}); }
  static OpStatus pending() { return OpStatus(Code::Pending, {}); }
  static OpStatus failed(std::string error) { return OpStatus(Code::Failed, std::move(error)); }

  Code code() const { return code_; }
  bool is_ok() const { return code_ == Code::Ok; }
  bool is_pending() const { return code_ == Code::Pending; }
  bool is_failed() const { return code_ == Code::Failed; }
  const std::string& error() const { return error_; }

 private:
  OpStatus(Code code, std::string error) : code_(code), error_(std::move(error)) {}
  Code code_;
  std::string error_;
};

class DeviceOps {
 public:
  DeviceOps() = default;
  DeviceOps(const DeviceOps&) = delete;
  DeviceOps& operator=(const DeviceOps&) = delete;
  virtual ~DeviceOps() = default;

  // Creates the communication stream, events 0 .. events-1 and the scratch word, then starts
  // the NCCL communicator (Pending: poll comm_state()). Called once, before anything else.
  virtual OpStatus init(int events) = 0;
  // Records `event` on `stream` (cudaEventRecord).
  virtual OpStatus record(int event, Stream stream) = 0;
  // Makes `waiter` wait on device for the last record of `event` (cudaStreamWaitEvent); the
  // host does not block.
  virtual OpStatus stream_wait(Stream waiter, int event) = 0;
  // Enqueues one NCCL call on the communication stream.
  virtual OpStatus enqueue(const CollectiveCall& call) = 0;
  // Has `event` completed (cudaEventQuery)? Never blocks.
  virtual OpStatus query(int event) = 0;
  // The NCCL communicator's state (ncclCommGetAsyncError): Ok, Pending (ncclInProgress: a
  // nonblocking call is still being carried out) or Failed (an asynchronous error, e.g. a peer
  // that died or a network failure). Never blocks.
  virtual OpStatus comm_state() = 0;
  // Starts the orderly shutdown (ncclCommFinalize; Pending: poll comm_state()).
  virtual OpStatus finalize() = 0;
  // Aborts the NCCL communicator (ncclCommAbort): in-flight operations stop, and no NCCL call
  // is made afterwards.
  virtual void abort() = 0;
  // Seconds on a monotonic clock.
  virtual double now() = 0;
  // Called between two polls of a blocking wait (the real implementation yields the thread).
  virtual void idle() = 0;
  // One float of device memory, the operand of barrier()'s all-reduce.
  virtual float* scratch() = 0;
};

}  // namespace ph::nccl
