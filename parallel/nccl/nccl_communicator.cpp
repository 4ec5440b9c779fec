#include "parallel/nccl/nccl_communicator.h"

#include <cmath>
#include <cstdlib>
#include <exception>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "parallel/runtime.h"

namespace ph {
namespace {

using nccl::Collective;
using nccl::CollectiveCall;
using nccl::DataType;
using nccl::OpStatus;
using nccl::Stream;

template <typename T>
DataType data_type();
template <>
DataType data_type<float>() {
  return DataType::Float32;
}
template <>
DataType data_type<double>() {
  return DataType::Float64;
}
template <>
DataType data_type<int64_t>() {
  return DataType::Int64;
}
template <>
DataType data_type<char>() {
  return DataType::Char;
}

std::string seconds_text(double seconds) {
  std::ostringstream out;
  out << seconds;
  return out.str();
}

// Do the byte ranges [a, a + a_bytes) and [b, b + b_bytes) share a byte?
bool overlap(const void* a, size_t a_bytes, const void* b, size_t b_bytes) {
  const auto x = reinterpret_cast<std::uintptr_t>(a);
  const auto y = reinterpret_cast<std::uintptr_t>(b);
  return a_bytes > 0 && b_bytes > 0 && x < y + b_bytes && y < x + a_bytes;
}

void require_buffer(const void* p, const char* name, const char* what) {
  if (p == nullptr)
    throw std::logic_error(std::string(what) + ": " + name + " is null with a non-zero count");
}

}  // namespace

NcclCommunicator::NcclCommunicator(std::unique_ptr<nccl::DeviceOps> ops, int rank, int size,
                                   double timeout_seconds, FatalHandler on_fatal)
    : ops_(std::move(ops)),
      rank_(rank),
      size_(size),
      timeout_(timeout_seconds),
      on_fatal_(std::move(on_fatal)),
      uncaught_at_construction_(std::uncaught_exceptions()) {
  if (!ops_) throw std::invalid_argument("NcclCommunicator: no device operations");
  if (size < 1 || rank < 0 || rank >= size)
    throw std::invalid_argument("NcclCommunicator: rank " + std::to_string(rank) +
                                " is not a rank of a group of size " + std::to_string(size));
  if (!(timeout_seconds > 0) || !std::isfinite(timeout_seconds))
    throw std::invalid_argument(
        "NcclCommunicator: timeout_seconds must be positive and finite, not " +
        seconds_text(timeout_seconds));
  const double since = ops_->now();
  settle(ops_->init(kEvents), "communicator initialisation", kNoCount, since);
}

NcclCommunicator::~NcclCommunicator() {
  // Unwinding: the peers may be inside a collective this rank will never join, so finalizing
  // would wait for them until the timeout and then replace the exception in flight with a
  // timeout message. Abort instead and let the exception reach main() now.
  if (unwinding()) abort_quietly();
  if (aborted_) return;
  const double since = ops_->now();
  settle(ops_->finalize(), "communicator shutdown", kNoCount, since);
}

// --- all-reduce ---

template <typename T>
void NcclCommunicator::all_reduce_impl(T* buf, size_t n, ReduceOp op, const char* what) {
  if (n == 0) return;
  require_buffer(buf, "buf", what);
  run(what, n, {Collective::AllReduce, buf, buf, n, data_type<T>(), op, 0});
}

template <typename T>
Work NcclCommunicator::all_reduce_async_impl(T* buf, size_t n, ReduceOp op) {
  const char* what = "all_reduce_async";
  if (n == 0) return Work();
  require_buffer(buf, "buf", what);
  return start(what, n, {Collective::AllReduce, buf, buf, n, data_type<T>(), op, 0});
}

void NcclCommunicator::all_reduce(float* buf, size_t n, ReduceOp op) {
  all_reduce_impl(buf, n, op, "all_reduce");
}

void NcclCommunicator::all_reduce(double* buf, size_t n, ReduceOp op) {
  all_reduce_impl(buf, n, op, "all_reduce");
}

void NcclCommunicator::all_reduce(int64_t* buf, size_t n, ReduceOp op) {
  if (op == ReduceOp::Avg)
    throw std::logic_error("all_reduce: ReduceOp::Avg is not defined on int64 (use Sum)");
  all_reduce_impl(buf, n, op, "all_reduce");
}

Work NcclCommunicator::all_reduce_async(float* buf, size_t n, ReduceOp op) {
  return all_reduce_async_impl(buf, n, op);
}

Work NcclCommunicator::all_reduce_async(double* buf, size_t n, ReduceOp op) {
  return all_reduce_async_impl(buf, n, op);
}

// --- all-gather ---

// NCCL's in-place rule is the interface's: send == recv + rank * n. Any other overlap of send
// with recv is a bug.
CollectiveCall NcclCommunicator::gather_call(const float* send, float* recv, size_t n,
                                             const char* what) const {
  require_buffer(send, "send", what);
  require_buffer(recv, "recv", what);
  const bool in_place = send == recv + static_cast<size_t>(rank_) * n;
  if (!in_place &&
      overlap(send, n * sizeof(float), recv, static_cast<size_t>(size_) * n * sizeof(float)))
    throw std::logic_error(std::string(what) +
                           ": send overlaps recv without being this rank's block "
                           "recv + rank() * n_per_rank (the only in-place form)");
  return {Collective::AllGather, send, recv, n, DataType::Float32, ReduceOp::Sum, 0};
}

void NcclCommunicator::all_gather(const float* send, float* recv, size_t n_per_rank) {
  if (n_per_rank == 0) return;
  run("all_gather", n_per_rank, gather_call(send, recv, n_per_rank, "all_gather"));
}

Work NcclCommunicator::all_gather_async(const float* send, float* recv, size_t n_per_rank) {
  const char* what = "all_gather_async";
  if (n_per_rank == 0) return Work();
  return start(what, n_per_rank, gather_call(send, recv, n_per_rank, what));
}

// --- reduce-scatter ---

CollectiveCall NcclCommunicator::scatter_call(const float* send, float* recv, size_t n, ReduceOp op,
                                              const char* what) const {
  require_buffer(send, "send", what);
  require_buffer(recv, "recv", what);
  if (overlap(send, static_cast<size_t>(size_) * n * sizeof(float), recv, n * sizeof(float)))
    throw std::logic_error(std::string(what) + ": send and recv overlap");
  return {Collective::ReduceScatter, send, recv, n, DataType::Float32, op, 0};
}

void NcclCommunicator::reduce_scatter(const float* send, float* recv, size_t n_per_rank,
                                      ReduceOp op) {
  if (n_per_rank == 0) return;
  run("reduce_scatter", n_per_rank, scatter_call(send, recv, n_per_rank, op, "reduce_scatter"));
}

Work NcclCommunicator::reduce_scatter_async(const float* send, float* recv, size_t n_per_rank,
                                            ReduceOp op) {
  const char* what = "reduce_scatter_async";
  if (n_per_rank == 0) return Work();
  return start(what, n_per_rank, scatter_call(send, recv, n_per_rank, op, what));
}

// --- broadcast, barrier ---

template <typename T>
void NcclCommunicator::broadcast_impl(T* buf, size_t n, int root) {
  if (root < 0 || root >= size_)
    throw std::invalid_argument("broadcast: root " + std::to_string(root) +
                                " is not a rank of this communicator (size " +
                                std::to_string(size_) + ")");
  if (n == 0) return;
  require_buffer(buf, "buf", "broadcast");
  run("broadcast", n, {Collective::Broadcast, buf, buf, n, data_type<T>(), ReduceOp::Sum, root});
}

void NcclCommunicator::broadcast(float* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}
void NcclCommunicator::broadcast(double* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}
void NcclCommunicator::broadcast(int64_t* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}
void NcclCommunicator::broadcast(char* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}

void NcclCommunicator::barrier() {
  float* word = ops_->scratch();
  run("barrier", 1, {Collective::AllReduce, word, word, 1, DataType::Float32, ReduceOp::Sum, 0});
}

// --- issuing ---

void NcclCommunicator::run(const char* what, size_t n, const CollectiveCall& call) {
  issue(kBlockingSlot, what, n, call);
  wait_slot(kBlockingSlot);
}

Work NcclCommunicator::start(const char* what, size_t n, const CollectiveCall& call) {
  for (int slot = 0; slot < kPoolSlots; ++slot) {
    if (slots_[static_cast<size_t>(slot)].state != SlotState::Free) continue;
    ++slots_in_use_;
    issue(slot, what, n, call);
    return make_work(slot);
  }
  throw std::logic_error(std::string(what) + ": the communicator's pool of " +
                         std::to_string(kPoolSlots) +
                         " slots is exhausted by async operations whose Work has not been "
                         "waited on: call wait() or done() on earlier Work before starting more");
}

void NcclCommunicator::issue(int slot, const char* what, size_t n, const CollectiveCall& call) {
  if (aborted_)
    fail(what, n, "cannot start: the NCCL communicator was aborted after an earlier error");
  Slot& s = slots_[static_cast<size_t>(slot)];
  s = Slot{SlotState::Pending, what, n, ops_->now()};
  check(ops_->record(ready_event(slot), Stream::Compute), what, n);
  check(ops_->stream_wait(Stream::Comm, ready_event(slot)), what, n);
  settle(ops_->enqueue(call), what, n, s.issued_at);
  check(ops_->record(done_event(slot), Stream::Comm), what, n);
}

void NcclCommunicator::settle(OpStatus status, const char* what, size_t n, double since) {
  check(status, what, n);
  while (status.is_pending()) {
    status = ops_->comm_state();
    check(status, what, n);
    if (status.is_ok()) return;
    if (ops_->now() - since > timeout_)
      fail(what, n, "timed out after " + seconds_text(timeout_) + " s");
    ops_->idle();
  }
}

// --- completion ---

bool NcclCommunicator::poll(int slot) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (s.state != SlotState::Pending) return true;
  const OpStatus status = ops_->query(done_event(slot));
  check(status, s.what, s.n);
  if (status.is_pending()) return false;
  check(ops_->stream_wait(Stream::Compute, done_event(slot)), s.what, s.n);
  s.state = SlotState::Complete;
  return true;
}

void NcclCommunicator::check_health() {
  int oldest = -1;
  for (int i = 0; i < kSlots; ++i) {
    const Slot& s = slots_[static_cast<size_t>(i)];
    if (s.state == SlotState::Pending &&
        (oldest < 0 || s.issued_at < slots_[static_cast<size_t>(oldest)].issued_at))
      oldest = i;
  }
  if (oldest < 0) return;
  // An asynchronous error is charged to the oldest operation in flight: the first one that
  // cannot complete.
  const Slot& first = slots_[static_cast<size_t>(oldest)];
  check(ops_->comm_state(), first.what, first.n);
  // Only operations past their deadline are queried again, so that one that completed
  // without being observed is not taken for a timeout.
  const double now = ops_->now();
  int late = -1;
  for (int i = 0; i < kSlots; ++i) {
    const Slot& s = slots_[static_cast<size_t>(i)];
    if (s.state != SlotState::Pending || now - s.issued_at <= timeout_ || poll(i)) continue;
    if (late < 0 || s.issued_at < slots_[static_cast<size_t>(late)].issued_at) late = i;
  }
  if (late >= 0) {
    const Slot& s = slots_[static_cast<size_t>(late)];
    fail(s.what, s.n, "timed out after " + seconds_text(timeout_) + " s");
  }
}

void NcclCommunicator::wait_slot(int slot) {
  // A Work destroyed while an exception unwinds: the operation may wait for peers that wait for
  // this rank elsewhere, and a failure found while polling would end the job with an NCCL
  // message instead of the exception in flight. Abort, and release the slot without waiting.
  if (unwinding()) abort_quietly();
  // After an abort (after an error when the fatal handler returned control by throwing, as in
  // tests, or while unwinding) the operation will never complete: the slot is just released.
  while (!aborted_ && !poll(slot)) {
    check_health();
    if (slots_[static_cast<size_t>(slot)].state != SlotState::Pending) break;
    ops_->idle();
  }
  release(slot);
}

bool NcclCommunicator::test_slot(int slot) {
  if (!aborted_ && !poll(slot)) {
    check_health();
    if (slots_[static_cast<size_t>(slot)].state == SlotState::Pending) return false;
  }
  release(slot);
  return true;
}

void NcclCommunicator::progress() {
  if (aborted_) return;
  bool outstanding = false;
  for (int i = 0; i < kSlots; ++i) outstanding = !poll(i) || outstanding;
  if (outstanding) check_health();
}

void NcclCommunicator::release(int slot) {
  slots_[static_cast<size_t>(slot)] = Slot{};
  if (slot != kBlockingSlot) --slots_in_use_;
}

// --- errors ---

std::string NcclCommunicator::describe(const char* what, size_t n) const {
  std::string text = std::string("NCCL ") + what + " (";
  if (n != kNoCount) text += "count " + std::to_string(n) + ", ";
  return text + "group rank " + std::to_string(rank_) + " of " + std::to_string(size_) + ")";
}

void NcclCommunicator::check(const OpStatus& status, const char* what, size_t n) {
  if (status.is_failed()) fail(what, n, "failed: " + status.error());
}

bool NcclCommunicator::unwinding() const {
  return std::uncaught_exceptions() > uncaught_at_construction_;
}

void NcclCommunicator::abort_quietly() {
  if (aborted_) return;
  aborted_ = true;
  ops_->abort();
}

void NcclCommunicator::fail(const char* what, size_t n, const std::string& reason) {
  const std::string message = describe(what, n) + " " + reason;
  abort_quietly();
  if (on_fatal_)
    on_fatal_(message);
  else
    fatal_exit(message, 1, /*all_ranks_agree=*/false);
  std::abort();  // a fatal handler must not return
}

}  // namespace ph
