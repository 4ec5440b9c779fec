#include "parallel/mpi_communicator.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "parallel/deadline.h"
#include "parallel/runtime.h"

namespace ph {
namespace {

template <typename T>
MPI_Datatype mpi_type();
template <>
MPI_Datatype mpi_type<float>() {
  return MPI_FLOAT;
}
template <>
MPI_Datatype mpi_type<double>() {
  return MPI_DOUBLE;
}
template <>
MPI_Datatype mpi_type<int64_t>() {
  return MPI_INT64_T;
}
template <>
MPI_Datatype mpi_type<char>() {
  return MPI_CHAR;
}

// What a message calls n elements of T.
template <typename T>
const char* elements() {
  if constexpr (std::is_same_v<T, float>) return "floats";
  if constexpr (std::is_same_v<T, double>) return "doubles";
  if constexpr (std::is_same_v<T, int64_t>) return "int64s";
  return "bytes";
}

// Avg is a Sum followed by the 1/size scaling.
MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
    case ReduceOp::Avg:
      return MPI_SUM;
    case ReduceOp::Max:
      return MPI_MAX;
    case ReduceOp::Min:
      return MPI_MIN;
  }
  throw std::logic_error("unknown ReduceOp");
}

// A failed MPI call leaves the group in an unknown state: end the job with the reason.
void check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  fatal_exit(std::string(call) + " failed: " + std::string(text, static_cast<size_t>(length)), 1,
             /*all_ranks_agree=*/false);
}

template <typename T>
void scale(T* buf, size_t n, int size) {
  const T s = T(1) / static_cast<T>(size);
  for (size_t i = 0; i < n; ++i) buf[i] *= s;
}

// Calls f(offset, length) for consecutive chunks of at most max elements covering [0, n).
template <typename F>
void for_chunks(size_t n, size_t max, F&& f) {
  for (size_t off = 0; off < n; off += max) f(off, static_cast<int>(std::min(max, n - off)));
}

// The calls below perform an operation (reqs == nullptr) or start it, one request per MPI
// call in reqs[0], reqs[1], ... Every rank makes the same calls in the same order.

template <typename T>
void all_reduce_calls(MPI_Comm comm, size_t max, T* buf, size_t n, ReduceOp op, MPI_Request* reqs) {
  for_chunks(n, max, [&](size_t off, int len) {
    if (reqs)
      check(MPI_Iallreduce(MPI_IN_PLACE, buf + off, len, mpi_type<T>(), mpi_op(op), comm, reqs++),
            "MPI_Iallreduce");
    else
      check(MPI_Allreduce(MPI_IN_PLACE, buf + off, len, mpi_type<T>(), mpi_op(op), comm),
            "MPI_Allreduce");
  });
}

// A chunk of `len` floats whose extent is a whole rank's block of n floats, so that count 1
// of it at recv + off places rank j's chunk at recv + j * n + off.
MPI_Datatype strided_chunk(int len, size_t n) {
  MPI_Datatype block = MPI_DATATYPE_NULL, strided = MPI_DATATYPE_NULL;
  check(MPI_Type_contiguous(len, MPI_FLOAT, &block), "MPI_Type_contiguous");
  check(MPI_Type_create_resized(block, 0, static_cast<MPI_Aint>(n * sizeof(float)), &strided),
        "MPI_Type_create_resized");
  check(MPI_Type_free(&block), "MPI_Type_free");
  check(MPI_Type_commit(&strided), "MPI_Type_commit");
  return strided;
}

void all_gather_calls(MPI_Comm comm, int rank, size_t max, const float* send, float* recv, size_t n,
                      MPI_Request* reqs) {
  const bool in_place = send == recv + static_cast<size_t>(rank) * n;
  if (n <= max) {
    const int count = static_cast<int>(n);
    const void* from = in_place ? MPI_IN_PLACE : send;
    if (reqs)
      check(MPI_Iallgather(from, count, MPI_FLOAT, recv, count, MPI_FLOAT, comm, reqs),
            "MPI_Iallgather");
    else
      check(MPI_Allgather(from, count, MPI_FLOAT, recv, count, MPI_FLOAT, comm), "MPI_Allgather");
    return;
  }
  for_chunks(n, max, [&](size_t off, int len) {
    MPI_Datatype chunk = strided_chunk(len, n);
    const void* from = in_place ? MPI_IN_PLACE : send + off;
    if (reqs)
      check(MPI_Iallgather(from, len, MPI_FLOAT, recv + off, 1, chunk, comm, reqs++),
            "MPI_Iallgather");
    else
      check(MPI_Allgather(from, len, MPI_FLOAT, recv + off, 1, chunk, comm), "MPI_Allgather");
    check(MPI_Type_free(&chunk), "MPI_Type_free");  // a started operation keeps its own reference
  });
}

// With more than one chunk per rank the blocks are not contiguous per chunk, so each chunk is
// reduced to each rank in turn (MPI_Reduce with that rank as root).
void reduce_scatter_calls(MPI_Comm comm, int rank, int size, size_t max, const float* send,
                          float* recv, size_t n, ReduceOp op, MPI_Request* reqs) {
  if (n <= max) {
    const int count = static_cast<int>(n);
    if (reqs)
      check(MPI_Ireduce_scatter_block(send, recv, count, MPI_FLOAT, mpi_op(op), comm, reqs),
            "MPI_Ireduce_scatter_block");
    else
      check(MPI_Reduce_scatter_block(send, recv, count, MPI_FLOAT, mpi_op(op), comm),
            "MPI_Reduce_scatter_block");
    return;
  }
  for_chunks(n, max, [&](size_t off, int len) {
    for (int root = 0; root < size; ++root) {
      const float* from = send + static_cast<size_t>(root) * n + off;
      float* to = root == rank ? recv + off : nullptr;
      if (reqs)
        check(MPI_Ireduce(from, to, len, MPI_FLOAT, mpi_op(op), root, comm, reqs++), "MPI_Ireduce");
      else
        check(MPI_Reduce(from, to, len, MPI_FLOAT, mpi_op(op), root, comm), "MPI_Reduce");
    }
  });
}

}  // namespace

MpiCommunicator::MpiCommunicator(MPI_Comm comm, std::string name, size_t max_count)
    : name_(std::move(name)), max_count_(max_count) {
  if (max_count < 1 || max_count > kMaxMpiCount)
    throw std::invalid_argument("MpiCommunicator: max_count " + std::to_string(max_count) +
                                " is outside 1.." + std::to_string(kMaxMpiCount));
  check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
  check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
  check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  requests_.fill(MPI_REQUEST_NULL);
}

MpiCommunicator::~MpiCommunicator() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  MPI_Waitall(kPoolSlots, requests_.data(), MPI_STATUSES_IGNORE);
  MPI_Comm_free(&comm_);
}

// --- all-reduce ---

template <typename T>
void MpiCommunicator::all_reduce_impl(T* buf, size_t n, ReduceOp op) {
  const Deadline deadline("MPI_Allreduce", elements<T>(), n, name_.c_str(), size_);
  all_reduce_calls(comm_, max_count_, buf, n, op, nullptr);
  if (op == ReduceOp::Avg) scale(buf, n, size_);
}

template <typename T>
Work MpiCommunicator::all_reduce_async_impl(T* buf, size_t n, ReduceOp op) {
  if (n == 0) return Work();
  const int first = acquire(chunks(n), "all_reduce_async", n);
  all_reduce_calls(comm_, max_count_, buf, n, op, &requests_[static_cast<size_t>(first)]);
  if (op == ReduceOp::Avg) set_scale(first, buf, n);
  return make_work(first);
}

void MpiCommunicator::all_reduce(float* buf, size_t n, ReduceOp op) {
  all_reduce_impl(buf, n, op);
}

void MpiCommunicator::all_reduce(double* buf, size_t n, ReduceOp op) {
  all_reduce_impl(buf, n, op);
}

void MpiCommunicator::all_reduce(int64_t* buf, size_t n, ReduceOp op) {
  if (op == ReduceOp::Avg)
    throw std::logic_error("all_reduce: ReduceOp::Avg is not defined on int64 (use Sum)");
  all_reduce_impl(buf, n, op);
}

Work MpiCommunicator::all_reduce_async(float* buf, size_t n, ReduceOp op) {
  return all_reduce_async_impl(buf, n, op);
}

Work MpiCommunicator::all_reduce_async(double* buf, size_t n, ReduceOp op) {
  return all_reduce_async_impl(buf, n, op);
}

// --- all-gather ---

void MpiCommunicator::all_gather(const float* send, float* recv, size_t n_per_rank) {
  if (n_per_rank == 0) return;
  const Deadline deadline("MPI_Allgather", "floats", n_per_rank, name_.c_str(), size_);
  all_gather_calls(comm_, rank_, max_count_, send, recv, n_per_rank, nullptr);
}

Work MpiCommunicator::all_gather_async(const float* send, float* recv, size_t n_per_rank) {
  if (n_per_rank == 0) return Work();
  const int first = acquire(chunks(n_per_rank), "all_gather_async", n_per_rank);
  all_gather_calls(comm_, rank_, max_count_, send, recv, n_per_rank,
                   &requests_[static_cast<size_t>(first)]);
  return make_work(first);
}

// --- reduce-scatter ---

size_t MpiCommunicator::reduce_scatter_requests(size_t n) const {
  const size_t c = chunks(n);
  return c <= 1 ? c : c * static_cast<size_t>(size_);
}

void MpiCommunicator::reduce_scatter(const float* send, float* recv, size_t n_per_rank,
                                     ReduceOp op) {
  if (n_per_rank == 0) return;
  const Deadline deadline("MPI_Reduce_scatter", "floats", n_per_rank, name_.c_str(), size_);
  reduce_scatter_calls(comm_, rank_, size_, max_count_, send, recv, n_per_rank, op, nullptr);
  if (op == ReduceOp::Avg) scale(recv, n_per_rank, size_);
}

Work MpiCommunicator::reduce_scatter_async(const float* send, float* recv, size_t n_per_rank,
                                           ReduceOp op) {
  if (n_per_rank == 0) return Work();
  const int first =
      acquire(reduce_scatter_requests(n_per_rank), "reduce_scatter_async", n_per_rank);
  reduce_scatter_calls(comm_, rank_, size_, max_count_, send, recv, n_per_rank, op,
                       &requests_[static_cast<size_t>(first)]);
  if (op == ReduceOp::Avg) set_scale(first, recv, n_per_rank);
  return make_work(first);
}

// --- broadcast, barrier ---

template <typename T>
void MpiCommunicator::broadcast_impl(T* buf, size_t n, int root) {
  if (root < 0 || root >= size_)
    throw std::invalid_argument("broadcast: root " + std::to_string(root) +
                                " is not a rank of this communicator (size " +
                                std::to_string(size_) + ")");
  const Deadline deadline("MPI_Bcast", elements<T>(), n, name_.c_str(), size_);
  for_chunks(n, max_count_, [&](size_t off, int len) {
    check(MPI_Bcast(buf + off, len, mpi_type<T>(), root, comm_), "MPI_Bcast");
  });
}

void MpiCommunicator::broadcast(float* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}
void MpiCommunicator::broadcast(double* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}
void MpiCommunicator::broadcast(int64_t* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}
void MpiCommunicator::broadcast(char* buf, size_t n, int root) {
  broadcast_impl(buf, n, root);
}

void MpiCommunicator::barrier() {
  const Deadline deadline("MPI_Barrier", "", 0, name_.c_str(), size_);
  check(MPI_Barrier(comm_), "MPI_Barrier");
}

// --- the request pool ---

int MpiCommunicator::acquire(size_t requests, const char* what, size_t n) {
  if (requests > static_cast<size_t>(kPoolSlots))
    throw std::logic_error(std::string(what) + " of " + std::to_string(n) + " elements needs " +
                           std::to_string(requests) + " MPI requests (chunks of " +
                           std::to_string(max_count_) + " elements), more than the " +
                           std::to_string(kPoolSlots) +
                           " slots of the communicator's request pool: use the blocking form");
  const int need = static_cast<int>(requests);
  for (int first = 0; first + need <= kPoolSlots;) {
    int run = 0;
    while (run < need && slots_[static_cast<size_t>(first + run)].state == SlotState::Free) ++run;
    if (run == need) {
      for (int k = 0; k < need; ++k)
        slots_[static_cast<size_t>(first + k)].state = SlotState::Member;
      Slot& s = slots_[static_cast<size_t>(first)];
      s.state = SlotState::Pending;
      s.length = need;
      slots_in_use_ += need;
      return first;
    }
    first += run + 1;
  }
  throw std::logic_error(std::string(what) + ": the communicator's request pool is exhausted (" +
                         std::to_string(slots_in_use_) + " of " + std::to_string(kPoolSlots) +
                         " slots held by async operations whose Work has not been waited on; "
                         "this one needs " +
                         std::to_string(need) +
                         "): call wait() or done() on earlier Work before starting more");
}

void MpiCommunicator::set_scale(int first, float* buf, size_t n) {
  Slot& s = slots_[static_cast<size_t>(first)];
  s.scale = Scale::F32;
  s.buf = buf;
  s.n = n;
}

void MpiCommunicator::set_scale(int first, double* buf, size_t n) {
  Slot& s = slots_[static_cast<size_t>(first)];
  s.scale = Scale::F64;
  s.buf = buf;
  s.n = n;
}

void MpiCommunicator::finish(Slot& s) {
  if (s.scale == Scale::F32) scale(static_cast<float*>(s.buf), s.n, size_);
  if (s.scale == Scale::F64) scale(static_cast<double*>(s.buf), s.n, size_);
  s.state = SlotState::Complete;
}

void MpiCommunicator::release(int first) {
  const int length = slots_[static_cast<size_t>(first)].length;
  for (int k = 0; k < length; ++k) slots_[static_cast<size_t>(first + k)] = Slot{};
  slots_in_use_ -= length;
}

void MpiCommunicator::wait_slot(int slot) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (s.state == SlotState::Pending) {
    const Deadline deadline("MPI_Waitall (an asynchronous collective)", "", 0, name_.c_str(),
                            size_);
    check(MPI_Waitall(s.length, &requests_[static_cast<size_t>(slot)], MPI_STATUSES_IGNORE),
          "MPI_Waitall");
    finish(s);
  }
  release(slot);
}

bool MpiCommunicator::test_slot(int slot) {
  Slot& s = slots_[static_cast<size_t>(slot)];
  if (s.state == SlotState::Pending) {
    int flag = 0;
    check(MPI_Testall(s.length, &requests_[static_cast<size_t>(slot)], &flag, MPI_STATUSES_IGNORE),
          "MPI_Testall");
    if (!flag) return false;
    finish(s);
  }
  release(slot);
  return true;
}

void MpiCommunicator::progress() {
  for (int i = 0; i < kPoolSlots && slots_in_use_ > 0;) {
    Slot& s = slots_[static_cast<size_t>(i)];
    if (s.state == SlotState::Pending) {
      int flag = 0;
      check(MPI_Testall(s.length, &requests_[static_cast<size_t>(i)], &flag, MPI_STATUSES_IGNORE),
            "MPI_Testall");
      if (flag) finish(s);
    }
    i += s.state == SlotState::Free ? 1 : s.length;
  }
}

}  // namespace ph
