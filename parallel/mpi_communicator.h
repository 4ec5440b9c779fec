// The MPI implementation of Communicator, on host buffers.
//
// Blocking forms map to MPI_Allreduce (MPI_IN_PLACE), MPI_Allgather, MPI_Reduce_scatter_block,
// MPI_Bcast and MPI_Barrier; async forms to their MPI_I* counterparts, whose requests live in
// a fixed pool of kPoolSlots slots allocated with the communicator. progress() tests every
// outstanding request (MPI_Testall), which is what moves them on: Open MPI has no progress
// thread.
//
// Counts above max_count (INT_MAX: MPI's int counts) are split into chunks, one MPI call
// each; an async operation takes one pool slot per MPI call it makes (reduce_scatter with
// more than max_count elements per rank makes one MPI_Ireduce per chunk and rank).
//
// An MPI error (a broken peer, a truncated message) is not recoverable: it ends the whole job
// with a message (fatal_exit), so no rank is left waiting. Every blocking call and every wait is
// a Deadline scope (parallel/deadline.h): a peer that hangs ends the job after
// runtime.comm_timeout with a message naming the operation and this group. Not thread-safe: one
// thread per communicator (MPI is initialised with MPI_THREAD_FUNNELED).
#pragma once
#include <mpi.h>

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <string>

#include "parallel/communicator.h"

namespace ph {

class MpiCommunicator final : public Communicator {
 public:
  static constexpr int kPoolSlots = 256;
  static constexpr size_t kMaxMpiCount = INT_MAX;

  // Duplicates comm (the dup is owned and freed by the destructor). name: the group in
  // messages ("tensor-parallel"). max_count: the largest element count of one MPI call (tests
  // lower it to exercise chunking), 1..INT_MAX.
  explicit MpiCommunicator(MPI_Comm comm, std::string name = "MPI",
                           size_t max_count = kMaxMpiCount);
  // Completes outstanding operations, then frees the communicator (unless MPI is finalized).
  ~MpiCommunicator() override;

  int rank() const override { return rank_; }
  const std::string& name() const { return name_; }
  int size() const override { return size_; }
  // The owned duplicate, for MPI users outside this interface (MPI-IO, parallel HDF5).
  MPI_Comm comm() const { return comm_; }

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

  using Communicator::broadcast;
  void broadcast(float* buf, size_t n, int root) override;
  void broadcast(double* buf, size_t n, int root) override;
  void broadcast(int64_t* buf, size_t n, int root) override;
  void broadcast(char* buf, size_t n, int root) override;

  void barrier() override;
  void progress() override;

  // Slots currently held by async operations (for tests and diagnostics).
  int slots_in_use() const { return slots_in_use_; }

 protected:
  void wait_slot(int slot) override;
  bool test_slot(int slot) override;

 private:
  enum class SlotState : uint8_t { Free, Member, Pending, Complete };
  enum class Scale : uint8_t { None, F32, F64 };
  // An operation holds `length` consecutive slots, one MPI request each. The first describes
  // it: Pending until its requests are seen complete (by wait, done or progress), Complete
  // after, until its Work releases it; the others are Members that only lend their requests.
  // `scale`: the Avg division applied to buf [n] when the requests complete.
  struct Slot {
    SlotState state = SlotState::Free;
    int length = 0;
    Scale scale = Scale::None;
    void* buf = nullptr;
    size_t n = 0;
  };
  template <typename T>
  void all_reduce_impl(T* buf, size_t n, ReduceOp op);
  template <typename T>
  Work all_reduce_async_impl(T* buf, size_t n, ReduceOp op);
  template <typename T>
  void broadcast_impl(T* buf, size_t n, int root);

  // MPI calls an operation makes: one per chunk (reduce_scatter: one per chunk and rank when
  // it has more than one chunk).
  size_t chunks(size_t n) const { return n == 0 ? 0 : (n - 1) / max_count_ + 1; }
  size_t reduce_scatter_requests(size_t n) const;
  // Takes `requests` consecutive free slots for an operation; logic_error when there are none.
  int acquire(size_t requests, const char* what, size_t n);
  void set_scale(int first, float* buf, size_t n);
  void set_scale(int first, double* buf, size_t n);
  void finish(Slot& s);
  void release(int first);

  MPI_Comm comm_ = MPI_COMM_NULL;
  std::string name_;
  int rank_ = 0;
  int size_ = 1;
  size_t max_count_;
  int slots_in_use_ = 0;
  std::array<MPI_Request, kPoolSlots> requests_;
  std::array<Slot, kPoolSlots> slots_{};
};

}  // namespace ph
