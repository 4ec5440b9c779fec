// Collective communication among the ranks of one group, independent of the backend (MPI on
// host buffers now, NCCL on device buffers later). Every rank of the group must call the same
// collectives in the same order with the same counts, ops and roots; a mismatch is a bug, not
// bad input.
//
// All counts are in elements of the buffer's type. Reductions:
//   Sum, Max, Min  element-wise over the ranks;
//   Avg            Sum, then every element is multiplied by 1/size in the buffer's type
//                  (not divided: one rounding, the same on every rank); floating point
//                  only — Avg on int64 is a logic_error.
// A backend splits counts its transport cannot express in one call (MPI: > INT_MAX) into
// chunks; callers never see it.
//
// Async forms return a Work. The buffers of an async operation must stay alive and untouched
// (send buffers unmodified, receive buffers unread) until its Work reports completion. The
// Work of an Avg reduction applies the 1/size scaling when it completes, so read the result
// only after wait() or done() == true.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ph {

enum class ReduceOp { Sum, Max, Min, Avg };

class Communicator;

// An in-flight collective: a value that names one slot of its communicator's fixed pool of
// requests (no heap allocation per operation). Move-only; the slot returns to the pool when
// the operation is observed complete (wait(), done() == true) or when the Work is destroyed,
// which waits — so buffers are never released while an operation still uses them.
// A default-constructed or moved-from Work is empty: already complete. A Work must not
// outlive its communicator.
class [[nodiscard]] Work {
 public:
  Work() = default;
  Work(Work&& other) noexcept;
  Work& operator=(Work&& other) noexcept;  // waits for the operation this Work held, if any
  Work(const Work&) = delete;
  Work& operator=(const Work&) = delete;
  ~Work();

  // Blocks until the operation is complete and its buffers may be used again.
  void wait();
  // Non-blocking: true once the operation is complete (the Work is then empty).
  bool done();
  // True while the Work still holds an operation not observed complete.
  bool pending() const { return comm_ != nullptr; }

 private:
  friend class Communicator;
  Work(Communicator* comm, int slot) : comm_(comm), slot_(slot) {}

  Communicator* comm_ = nullptr;
  int slot_ = -1;
};

class Communicator {
 public:
  Communicator() = default;
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;

  // In place: buf [n] holds this rank's input and receives the reduction.
  virtual void all_reduce(float* buf, size_t n, ReduceOp op) = 0;
  virtual void all_reduce(double* buf, size_t n, ReduceOp op) = 0;
  virtual void all_reduce(int64_t* buf, size_t n, ReduceOp op) = 0;
  virtual Work all_reduce_async(float* buf, size_t n, ReduceOp op) = 0;
  virtual Work all_reduce_async(double* buf, size_t n, ReduceOp op) = 0;

  // send [n_per_rank] → recv [size * n_per_rank]; rank j's block lands at recv + j * n_per_rank.
  // In place when send == recv + rank() * n_per_rank.
  virtual void all_gather(const float* send, float* recv, size_t n_per_rank) = 0;
  virtual Work all_gather_async(const float* send, float* recv, size_t n_per_rank) = 0;

  // send [size * n_per_rank] → recv [n_per_rank]: rank j receives the reduction over all ranks
  // of the block send + j * n_per_rank. send and recv must not overlap.
  virtual void reduce_scatter(const float* send, float* recv, size_t n_per_rank, ReduceOp op) = 0;
  virtual Work reduce_scatter_async(const float* send, float* recv, size_t n_per_rank,
                                    ReduceOp op) = 0;

  // buf [n]: root's values are copied to every rank. 0 <= root < size().
  virtual void broadcast(float* buf, size_t n, int root) = 0;
  virtual void broadcast(double* buf, size_t n, int root) = 0;
  virtual void broadcast(int64_t* buf, size_t n, int root) = 0;
  virtual void broadcast(char* buf, size_t n, int root) = 0;
  // Root's string (any length, e.g. an error message) replaces s on every rank.
  void broadcast(std::string& s, int root);

  virtual void barrier() = 0;

  // Lets in-flight async work progress (MPI has no progress thread): call it between chunks
  // of compute while async operations are outstanding. Never blocks.
  virtual void progress() = 0;

 protected:
  Work make_work(int slot) { return Work(this, slot); }
  // For Work: block until the operation in `slot` is complete, then release the slot.
  virtual void wait_slot(int slot) = 0;
  // For Work: if the operation in `slot` is complete, release the slot and return true.
  virtual bool test_slot(int slot) = 0;

 private:
  friend class Work;
};

inline Work::Work(Work&& other) noexcept : comm_(other.comm_), slot_(other.slot_) {
  other.comm_ = nullptr;
  other.slot_ = -1;
}

inline Work& Work::operator=(Work&& other) noexcept {
  if (this != &other) {
    wait();
    comm_ = other.comm_;
    slot_ = other.slot_;
    other.comm_ = nullptr;
    other.slot_ = -1;
  }
  return *this;
}

inline Work::~Work() {
  wait();
}

inline void Work::wait() {
  if (!comm_) return;
  comm_->wait_slot(slot_);
  comm_ = nullptr;
  slot_ = -1;
}

inline bool Work::done() {
  if (!comm_) return true;
  if (!comm_->test_slot(slot_)) return false;
  comm_ = nullptr;
  slot_ = -1;
  return true;
}

inline void Communicator::broadcast(std::string& s, int root) {
  int64_t length = static_cast<int64_t>(s.size());
  broadcast(&length, 1, root);
  s.resize(static_cast<size_t>(length));
  broadcast(s.data(), s.size(), root);
}

}  // namespace ph
