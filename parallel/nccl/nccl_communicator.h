// The NCCL implementation of Communicator, on device buffers.
//
// Every pointer passed to it is device memory of the current CUDA device (the inherited
// Communicator::broadcast(std::string&) stages through host memory and therefore does not work
// here: exchange host data over an MpiCommunicator). One communicator per group and device;
// make the device current (ph::cuda::select_device) before constructing it.
//
// Streams. The caller's compute stream produces and consumes the buffers; the communicator
// owns a non-blocking communication stream on which every NCCL call runs, in issue order. Each
// operation, in its slot's pair of events:
//   1. records `ready` on the compute stream and makes the communication stream wait on it, so
//      that the collective sees everything the compute stream did before the call;
//   2. enqueues the NCCL call on the communication stream (a nonblocking NCCL communicator may
//      answer ncclInProgress: the state is then polled until the call is enqueued);
//   3. records `done` on the communication stream.
// Issuing does not make the compute stream wait, so kernels launched after an async call
// overlap with the communication (they must not touch its buffers, see communicator.h).
// Completion is observed on the host by polling `done` (cudaEventQuery) in wait(), done(),
// progress() and the blocking forms; at that point — before the Work reports completion — the
// compute stream is also ordered after `done` (cudaStreamWaitEvent), so no kernel launched on it
// afterwards can read a half-reduced buffer.
//
// Blocking forms are the async form on a slot reserved for them followed by a host wait; so
// is barrier(), a one-element all-reduce on a device scratch word (NCCL has no barrier).
// Counts are size_t, as NCCL takes them: nothing is split into chunks.
//
// Avg is ncclAvg (NCCL >= 2.10) for float and double. NCCL computes it as a sum of inputs each
// pre-multiplied by 1/size, which equals the interface's sum-then-scale exactly when size is a
// power of two (barring underflow) and may differ in the last bit otherwise; every rank still
// gets the same value. Avg on int64 is a logic_error.
//
// Failure never hangs: a CUDA or NCCL error, an asynchronous NCCL error (ncclCommGetAsyncError,
// checked whenever an operation is polled), or an operation not complete within
// timeout_seconds of being issued aborts the NCCL communicator (ncclCommAbort) and ends the
// whole job through the fatal handler (ph::fatal_exit by default) with one message naming the
// operation, its count, the group rank and size, and the error or "timed out after N s". The
// timeout counts from the issue of the operation, so it must also cover the compute work queued
// ahead of it on the compute stream. Initialisation (ncclCommInitRankConfig with blocking = 0)
// and shutdown (ncclCommFinalize) are bounded by the same timeout.
//
// An exception that leaves the communicator's scope (a CUDA error, say, thrown by this rank
// alone) must not wait for the peers: they may sit inside a collective this rank will never
// join, so an orderly shutdown would wait the whole timeout and then end the job with an NCCL
// message instead of the original error. The communicator therefore tells unwinding from a
// normal end (std::uncaught_exceptions() above its value at construction): a communicator
// destroyed during unwinding aborts the NCCL communicator (ncclCommAbort; no ncclCommFinalize,
// no waiting, no fatal handler), and so does the destruction (or wait()) of one of its Work
// during unwinding, which then releases its slot without waiting for the operation. The
// exception goes on to main(), which prints it and ends the job (fatal_exit: MPI_Abort for an
// error not agreed by every rank). An exception caught before it leaves the communicator's
// scope, while no Work of it is destroyed, changes nothing: the communicator stays usable and a
// normal destruction still finalizes.
//
// Not thread-safe: one thread per communicator.
#pragma once
#include <mpi.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "parallel/communicator.h"
#include "parallel/nccl/device_ops.h"

// cudaStream_t is `struct CUstream_st*` (CUDA's driver_types.h); naming the struct keeps this
// header free of CUDA headers.
struct CUstream_st;

namespace ph {

class NcclCommunicator final : public Communicator {
 public:
  static constexpr int kPoolSlots = 256;  // async operations in flight at once
  // Receives the fatal message; must not return (the default, an empty handler, calls
  // ph::fatal_exit, which ends every rank). Tests pass one that throws.
  using FatalHandler = std::function<void(const std::string& message)>;

  // The real communicator: rank 0 of `group` creates the NCCL unique id and broadcasts it over
  // `group` (MPI), every rank joins with ncclCommInitRankConfig (nonblocking, so that a rank that
  // never arrives is a timeout, not a hang). compute_stream is the caller's (0: the legacy
  // default stream). timeout_seconds > 0. Defined in ph_nccl, which exists only in the CUDA
  // configuration.
  NcclCommunicator(MPI_Comm group, CUstream_st* compute_stream, double timeout_seconds);
  // Over any device operations (tests pass a fake): rank of size, timeout_seconds > 0.
  NcclCommunicator(std::unique_ptr<nccl::DeviceOps> ops, int rank, int size, double timeout_seconds,
                   FatalHandler on_fatal = {});
  // Finalizes the NCCL communicator (ncclCommFinalize flushes what was issued), bounded by the
  // timeout. Every Work must be gone by then. After an abort it does nothing. During stack
  // unwinding it aborts instead, without waiting (see the header comment).
  ~NcclCommunicator() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void all_reduce(float* buf, size_t n, ReduceOp op) override;
  void all_reduce(double* buf, size_t n, ReduceOp op) override;
  void all_reduce(int64_t* buf, size_t n, ReduceOp op) override;
  Work all_reduce_async(float* buf, size_t n, ReduceOp op) override;
  Work all_reduce_async(double* buf, size_t n, ReduceOp op) override;

  void all_gather(const float* send, float* recv, size_t n_per_rank) override;
  Work all_gather_async(const float* send, float* recv, size_t n_per_rank) override;

  void reduce_scatter(const float* send, float* recv, size_t n_per_rank, ReduceOp op) override;
  Work reduce_scatter_async(const float* send, float* recv, size_t n_per_rank,
                            ReduceOp op) override;

  void broadcast(float* buf, size_t n, int root) override;
  void broadcast(double* buf, size_t n, int root) override;
  void broadcast(int64_t* buf, size_t n, int root) override;
  void broadcast(char* buf, size_t n, int root) override;

  void barrier() override;
  // Polls every outstanding operation: observes completions, reports asynchronous errors and
  // timeouts. Never blocks.
  void progress() override;

  // Slots currently held by async operations (for tests and diagnostics).
  int slots_in_use() const { return slots_in_use_; }
  // The NCCL communicator was aborted (after an error, or while an exception unwound).
  bool aborted() const { return aborted_; }
  double timeout_seconds() const { return timeout_; }

 protected:
  void wait_slot(int slot) override;
  bool test_slot(int slot) override;

 private:
  // Pool slots 0 .. kPoolSlots-1 serve async operations; slot kPoolSlots serves the blocking
  // forms. Slot s owns events 2s (`ready`, on the compute stream) and 2s+1 (`done`, on the
  // communication stream).
  static constexpr int kBlockingSlot = kPoolSlots;
  static constexpr int kSlots = kPoolSlots + 1;
  static constexpr int kEvents = 2 * kSlots;
  static constexpr size_t kNoCount = SIZE_MAX;

  enum class SlotState : uint8_t { Free, Pending, Complete };
  struct Slot {
    SlotState state = SlotState::Free;
    const char* what = "";
    size_t n = 0;
    double issued_at = 0;
  };
  static int ready_event(int slot) { return 2 * slot; }
  static int done_event(int slot) { return 2 * slot + 1; }

  template <typename T>
  void all_reduce_impl(T* buf, size_t n, ReduceOp op, const char* what);
  template <typename T>
  Work all_reduce_async_impl(T* buf, size_t n, ReduceOp op);
  template <typename T>
  void broadcast_impl(T* buf, size_t n, int root);
  nccl::CollectiveCall gather_call(const float* send, float* recv, size_t n,
                                   const char* what) const;
  nccl::CollectiveCall scatter_call(const float* send, float* recv, size_t n, ReduceOp op,
                                    const char* what) const;

  // Runs `call` on the blocking slot and waits for it.
  void run(const char* what, size_t n, const nccl::CollectiveCall& call);
  // Starts `call` in a free pool slot; logic_error when the pool is exhausted.
  Work start(const char* what, size_t n, const nccl::CollectiveCall& call);
  // Steps 1-3 of the header comment on `slot`.
  void issue(int slot, const char* what, size_t n, const nccl::CollectiveCall& call);
  // Waits for a Pending answer of init, enqueue or finalize to settle (comm_state() Ok) within
  // the timeout counted from `since`.
  void settle(nccl::OpStatus status, const char* what, size_t n, double since);
  // Queries the slot's `done` event; on completion orders the compute stream after it.
  bool poll(int slot);
  // The communicator's asynchronous error and the deadlines of the operations in flight.
  void check_health();
  void release(int slot);

  std::string describe(const char* what, size_t n) const;
  void check(const nccl::OpStatus& status, const char* what, size_t n);
  [[noreturn]] void fail(const char* what, size_t n, const std::string& reason);
  // An exception is unwinding through a scope this communicator was created outside of.
  bool unwinding() const;
  // Aborts the NCCL communicator once, without a message: the exception in flight is the error.
  void abort_quietly();

  std::unique_ptr<nccl::DeviceOps> ops_;
  int rank_;
  int size_;
  double timeout_;
  FatalHandler on_fatal_;
  int uncaught_at_construction_;  // std::uncaught_exceptions() when constructed
  bool aborted_ = false;
  int slots_in_use_ = 0;
  std::array<Slot, kSlots> slots_{};
};

}  // namespace ph
