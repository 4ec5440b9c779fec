// The MPI communicator and agree(), on 2 ranks (written for any size >= 2). Every check runs
// on every rank; no ASSERT returns before a collective that the other ranks enter.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <typeinfo>
#include <vector>

#include "io/config.h"
#include "parallel/agreement.h"
#include "parallel/deadline.h"
#include "parallel/mpi_communicator.h"

namespace ph {
namespace {

constexpr ReduceOp kOps[] = {ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min, ReduceOp::Avg};

// Rank r contributes (r + 1) + i / 2 at element i: exact in float, distinct per rank.
template <typename T>
T input(int rank, size_t i) {
  return static_cast<T>(rank + 1) + static_cast<T>(i) / T(2);
}

template <typename T>
T expected(ReduceOp op, int size, size_t i) {
  const T base = static_cast<T>(i) / T(2);
  const T sum = static_cast<T>(size * (size + 1) / 2) + static_cast<T>(size) * base;
  switch (op) {
    case ReduceOp::Sum:
      return sum;
    case ReduceOp::Max:
      return static_cast<T>(size) + base;
    case ReduceOp::Min:
      return T(1) + base;
    case ReduceOp::Avg:
      return sum * (T(1) / static_cast<T>(size));
  }
  return T(0);
}

template <typename T>
std::vector<T> inputs(int rank, size_t n) {
  std::vector<T> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = input<T>(rank, i);
  return v;
}

template <typename T>
void expect_reduced(const std::vector<T>& v, ReduceOp op, int size) {
  for (size_t i = 0; i < v.size(); ++i)
    EXPECT_EQ(v[i], expected<T>(op, size, i)) << "op " << static_cast<int>(op) << " element " << i;
}

template <typename T>
void check_all_reduce(Communicator& c, size_t n) {
  for (ReduceOp op : kOps) {
    std::vector<T> v = inputs<T>(c.rank(), n);
    c.all_reduce(v.data(), n, op);
    expect_reduced(v, op, c.size());
  }
}

template <typename T>
void check_all_reduce_async(Communicator& c, size_t n) {
  for (ReduceOp op : kOps) {
    std::vector<T> v = inputs<T>(c.rank(), n);
    Work w = c.all_reduce_async(v.data(), n, op);
    w.wait();
    EXPECT_FALSE(w.pending());
    expect_reduced(v, op, c.size());
  }
}

// all_gather: rank r sends 100 r + i; recv [size * n] holds every rank's block in rank order.
void check_all_gather(Communicator& c, size_t n, bool async, bool in_place) {
  const int P = c.size(), r = c.rank();
  std::vector<float> send(n), recv(static_cast<size_t>(P) * n, -1.0f);
  for (size_t i = 0; i < n; ++i) send[i] = static_cast<float>(100 * r) + static_cast<float>(i);
  float* to = recv.data();
  const float* from = send.data();
  if (in_place) {
    std::copy(send.begin(), send.end(),
              recv.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(r) * n));
    from = to + static_cast<size_t>(r) * n;
  }
  if (async) {
    Work w = c.all_gather_async(from, to, n);
    w.wait();
  } else {
    c.all_gather(from, to, n);
  }
  for (int j = 0; j < P; ++j)
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(recv[static_cast<size_t>(j) * n + i],
                static_cast<float>(100 * j) + static_cast<float>(i))
          << "block " << j << " element " << i;
}

// reduce_scatter: rank q sends send[j n + i] = input(q, j n + i); rank r receives the
// reduction of block r, i.e. expected(op, r n + i).
void check_reduce_scatter(Communicator& c, size_t n, bool async) {
  const int P = c.size(), r = c.rank();
  for (ReduceOp op : kOps) {
    std::vector<float> send = inputs<float>(r, static_cast<size_t>(P) * n), recv(n, -1.0f);
    if (async) {
      Work w = c.reduce_scatter_async(send.data(), recv.data(), n, op);
      w.wait();
    } else {
      c.reduce_scatter(send.data(), recv.data(), n, op);
    }
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(recv[i], expected<float>(op, P, static_cast<size_t>(r) * n + i))
          << "op " << static_cast<int>(op) << " element " << i;
  }
}

template <typename T>
void check_broadcast(Communicator& c, size_t n) {
  for (int root = 0; root < c.size(); ++root) {
    std::vector<T> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<T>(c.rank() * 1000 + static_cast<int>(i));
    c.broadcast(v.data(), n, root);
    for (size_t i = 0; i < n; ++i)
      EXPECT_EQ(v[i], static_cast<T>(root * 1000 + static_cast<int>(i)));
  }
}

TEST(MpiComm, RankAndSize) {
  MpiCommunicator c(MPI_COMM_WORLD);
  int rank = -1, size = -1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  EXPECT_EQ(c.rank(), rank);
  EXPECT_EQ(c.size(), size);
  EXPECT_GE(c.size(), 2);
  c.barrier();
}

TEST(MpiComm, AllReduceEveryTypeAndOp) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_all_reduce<float>(c, 33);
  check_all_reduce<double>(c, 33);
  check_all_reduce_async<float>(c, 33);
  check_all_reduce_async<double>(c, 33);
}

TEST(MpiComm, AllReduceInt64BeyondThirtyTwoBits) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const int P = c.size();
  const int64_t big = int64_t{1} << 40;
  std::vector<int64_t> v = {big * (c.rank() + 1), -c.rank(), 7};
  std::vector<int64_t> w = v, x = v;
  c.all_reduce(v.data(), v.size(), ReduceOp::Sum);
  EXPECT_EQ(v[0], big * P * (P + 1) / 2);
  EXPECT_EQ(v[1], -int64_t{P} * (P - 1) / 2);
  EXPECT_EQ(v[2], 7 * P);
  c.all_reduce(w.data(), w.size(), ReduceOp::Max);
  EXPECT_EQ(w[0], big * P);
  EXPECT_EQ(w[1], 0);
  c.all_reduce(x.data(), x.size(), ReduceOp::Min);
  EXPECT_EQ(x[0], big);
  EXPECT_EQ(x[1], -(P - 1));
  EXPECT_THROW(c.all_reduce(x.data(), x.size(), ReduceOp::Avg), std::logic_error);
}

TEST(MpiComm, AllGatherLayout) {
  MpiCommunicator c(MPI_COMM_WORLD);
  for (bool async : {false, true})
    for (bool in_place : {false, true}) check_all_gather(c, 5, async, in_place);
}

TEST(MpiComm, ReduceScatterLayout) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_reduce_scatter(c, 6, /*async=*/false);
  check_reduce_scatter(c, 6, /*async=*/true);
}

TEST(MpiComm, BroadcastFromEveryRoot) {
  MpiCommunicator c(MPI_COMM_WORLD);
  check_broadcast<float>(c, 9);
  check_broadcast<double>(c, 9);
  check_broadcast<int64_t>(c, 9);
  check_broadcast<char>(c, 9);
  float x = 0;
  EXPECT_THROW(c.broadcast(&x, 1, c.size()), std::invalid_argument);
  EXPECT_THROW(c.broadcast(&x, 1, -1), std::invalid_argument);
}

TEST(MpiComm, BroadcastString) {
  MpiCommunicator c(MPI_COMM_WORLD);
  for (int root = 0; root < c.size(); ++root) {
    std::string s = "rank " + std::to_string(c.rank()) + " says hello";
    c.broadcast(s, root);
    EXPECT_EQ(s, "rank " + std::to_string(root) + " says hello");
  }
  // The root's length wins, longer or shorter than the receivers' strings, empty included.
  const std::string long_text(100000, 'x');
  std::string s = c.rank() == 1 ? long_text : "short";
  c.broadcast(s, 1);
  EXPECT_EQ(s, long_text);
  s = c.rank() == 0 ? "" : "not empty";
  c.broadcast(s, 0);
  EXPECT_EQ(s, "");
}

TEST(MpiComm, ZeroCountsAreNoOps) {
  MpiCommunicator c(MPI_COMM_WORLD);
  float x = 3.0f;
  c.all_reduce(&x, 0, ReduceOp::Sum);
  c.all_gather(&x, &x, 0);
  c.reduce_scatter(&x, &x, 0, ReduceOp::Sum);
  c.broadcast(&x, 0, 0);
  Work w = c.all_reduce_async(&x, 0, ReduceOp::Avg);
  EXPECT_FALSE(w.pending());
  EXPECT_TRUE(w.done());
  EXPECT_EQ(x, 3.0f);
  EXPECT_EQ(c.slots_in_use(), 0);
}

TEST(MpiComm, SeveralAsyncInFlightCompletedInAnotherOrder) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const int P = c.size(), r = c.rank();
  const size_t n = 1000;
  std::vector<float> a = inputs<float>(r, n);
  std::vector<double> d = inputs<double>(r, n);
  std::vector<float> send(n, static_cast<float>(r)), gathered(static_cast<size_t>(P) * n);
  std::vector<float> rs_send = inputs<float>(r, static_cast<size_t>(P) * n), rs_recv(n);

  std::vector<Work> works;
  works.push_back(c.all_reduce_async(a.data(), n, ReduceOp::Sum));
  works.push_back(c.all_gather_async(send.data(), gathered.data(), n));
  works.push_back(c.reduce_scatter_async(rs_send.data(), rs_recv.data(), n, ReduceOp::Avg));
  works.push_back(c.all_reduce_async(d.data(), n, ReduceOp::Max));
  EXPECT_EQ(c.slots_in_use(), 4);
  // Each rank completes them in its own order, none in the order they were started.
  const std::vector<int> order =
      r % 2 == 0 ? std::vector<int>{3, 1, 2, 0} : std::vector<int>{2, 0, 3, 1};
  for (int k : order) works[static_cast<size_t>(k)].wait();
  EXPECT_EQ(c.slots_in_use(), 0);

  expect_reduced(a, ReduceOp::Sum, P);
  expect_reduced(d, ReduceOp::Max, P);
  for (size_t i = 0; i < gathered.size(); ++i) EXPECT_EQ(gathered[i], static_cast<float>(i / n));
  for (size_t i = 0; i < n; ++i)
    EXPECT_EQ(rs_recv[i], expected<float>(ReduceOp::Avg, P, static_cast<size_t>(r) * n + i));
}

TEST(MpiComm, ProgressDrivesAsyncWorkToCompletion) {
  MpiCommunicator c(MPI_COMM_WORLD);
  c.progress();  // nothing in flight: a no-op
  const size_t n = size_t{1} << 16;
  std::vector<float> v = inputs<float>(c.rank(), n);
  Work w = c.all_reduce_async(v.data(), n, ReduceOp::Avg);
  while (!w.done()) c.progress();  // where compute would go
  EXPECT_FALSE(w.pending());
  EXPECT_EQ(c.slots_in_use(), 0);
  expect_reduced(v, ReduceOp::Avg, c.size());  // scaled once, whoever saw it complete

  // Completion most likely seen by progress() first, then by wait(): still scaled once.
  std::vector<float> u = inputs<float>(c.rank(), 64);
  Work x = c.all_reduce_async(u.data(), u.size(), ReduceOp::Avg);
  for (int k = 0; k < 200; ++k) c.progress();
  c.barrier();
  for (int k = 0; k < 200; ++k) c.progress();
  x.wait();
  expect_reduced(u, ReduceOp::Avg, c.size());
}

TEST(MpiComm, WorkIsAMoveOnlyHandleThatWaitsWhenDestroyed) {
  MpiCommunicator c(MPI_COMM_WORLD);
  Work empty;
  EXPECT_FALSE(empty.pending());
  EXPECT_TRUE(empty.done());
  empty.wait();

  std::vector<float> v = inputs<float>(c.rank(), 16);
  { Work w = c.all_reduce_async(v.data(), v.size(), ReduceOp::Sum); }  // the destructor waits
  EXPECT_EQ(c.slots_in_use(), 0);
  expect_reduced(v, ReduceOp::Sum, c.size());

  std::vector<float> a = inputs<float>(c.rank(), 16), b = inputs<float>(c.rank(), 16);
  Work first = c.all_reduce_async(a.data(), a.size(), ReduceOp::Max);
  Work moved = std::move(first);
  EXPECT_FALSE(first.pending());  // NOLINT(bugprone-use-after-move): moved-from is empty
  EXPECT_TRUE(moved.pending());
  moved = c.all_reduce_async(b.data(), b.size(), ReduceOp::Min);  // waits for the Max first
  expect_reduced(a, ReduceOp::Max, c.size());
  moved.wait();
  expect_reduced(b, ReduceOp::Min, c.size());
  EXPECT_EQ(c.slots_in_use(), 0);
}

TEST(MpiComm, RunningOutOfRequestSlotsIsALogicError) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const int slots = MpiCommunicator::kPoolSlots;
  std::vector<float> bufs(static_cast<size_t>(slots) + 1, 1.0f);
  std::vector<Work> works;
  for (int i = 0; i < slots; ++i)
    works.push_back(c.all_reduce_async(&bufs[static_cast<size_t>(i)], 1, ReduceOp::Sum));
  EXPECT_EQ(c.slots_in_use(), slots);
  std::string message;
  try {
    Work extra = c.all_reduce_async(&bufs.back(), 1, ReduceOp::Sum);
  } catch (const std::logic_error& e) {
    message = e.what();
  }
  EXPECT_EQ(message,
            "all_reduce_async: the communicator's request pool is exhausted (256 of 256 slots "
            "held by async operations whose Work has not been waited on; this one needs 1): "
            "call wait() or done() on earlier Work before starting more");
  // A released slot is reused.
  works[7].wait();
  works[7] = c.all_reduce_async(&bufs.back(), 1, ReduceOp::Sum);
  for (Work& w : works) w.wait();
  EXPECT_EQ(c.slots_in_use(), 0);
  for (float x : bufs) EXPECT_EQ(x, static_cast<float>(c.size()));
}

// max_count = 3 forces every path through the chunking that counts above INT_MAX take.
TEST(MpiComm, ChunkedCountsGiveTheSameResults) {
  MpiCommunicator c(MPI_COMM_WORLD, "test", /*max_count=*/3);
  check_all_reduce<float>(c, 10);
  check_all_reduce<double>(c, 10);
  check_all_reduce_async<float>(c, 10);
  check_all_reduce_async<double>(c, 9);
  for (bool async : {false, true})
    for (bool in_place : {false, true}) check_all_gather(c, 7, async, in_place);
  check_reduce_scatter(c, 7, /*async=*/false);
  check_reduce_scatter(c, 7, /*async=*/true);
  check_broadcast<float>(c, 10);
  check_broadcast<char>(c, 10);
  std::string s = c.rank() == 0 ? "a message longer than three characters" : "";
  c.broadcast(s, 0);
  EXPECT_EQ(s, "a message longer than three characters");

  // One slot per MPI call: 10 elements in chunks of 3 → 4 requests.
  std::vector<float> v = inputs<float>(c.rank(), 10);
  Work w = c.all_reduce_async(v.data(), v.size(), ReduceOp::Sum);
  EXPECT_EQ(c.slots_in_use(), 4);
  w.wait();
  EXPECT_EQ(c.slots_in_use(), 0);
}

TEST(MpiComm, AnAsyncOpLargerThanThePoolIsALogicError) {
  MpiCommunicator c(MPI_COMM_WORLD, "test", /*max_count=*/1);
  std::vector<float> v = inputs<float>(c.rank(), 300);
  std::string message;
  try {
    Work w = c.all_reduce_async(v.data(), v.size(), ReduceOp::Sum);
  } catch (const std::logic_error& e) {
    message = e.what();
  }
  EXPECT_EQ(message,
            "all_reduce_async of 300 elements needs 300 MPI requests (chunks of 1 elements), "
            "more than the 256 slots of the communicator's request pool: use the blocking form");
  c.all_reduce(v.data(), v.size(), ReduceOp::Sum);  // the blocking form is not limited
  expect_reduced(v, ReduceOp::Sum, c.size());
}

TEST(MpiComm, InvalidMaxCount) {
  EXPECT_THROW(MpiCommunicator(MPI_COMM_WORLD, "test", 0), std::invalid_argument);
}

// --- agree() ---

struct Outcome {
  std::string type;  // none | InputError | runtime_error | other
  std::string message;
};

Outcome run_agree(Communicator& c, const std::function<void()>& fn) {
  try {
    agree(c, fn);
    return {"none", ""};
  } catch (const InputError& e) {
    return {"InputError", e.what()};
  } catch (const IoError& e) {
    return {"IoError", e.what()};
  } catch (const std::invalid_argument& e) {
    return {"invalid_argument", e.what()};
  } catch (const std::runtime_error& e) {
    return {typeid(e) == typeid(std::runtime_error) ? "runtime_error" : "other", e.what()};
  } catch (...) {
    return {"other", ""};
  }
}

TEST(Agree, NothingThrowsNothingHappens) {
  MpiCommunicator c(MPI_COMM_WORLD);
  int64_t calls = 0;
  const Outcome o = run_agree(c, [&] { ++calls; });
  EXPECT_EQ(o.type, "none");
  EXPECT_EQ(calls, 1);
  c.all_reduce(&calls, 1, ReduceOp::Sum);
  EXPECT_EQ(calls, c.size());
}

TEST(Agree, InputErrorOnOneRankIsThrownByAll) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const Outcome o = run_agree(c, [&] {
    if (c.rank() == 1) throw InputError("data shard 'b.bin': bad magic 42");
  });
  EXPECT_EQ(o.type, "InputError");
  EXPECT_EQ(o.message, "data shard 'b.bin': bad magic 42");
}

TEST(Agree, RuntimeErrorOnRankOneIsThrownByAll) {
  MpiCommunicator c(MPI_COMM_WORLD);
  const Outcome o = run_agree(c, [&] {
    if (c.rank() == 1) throw std::runtime_error("out of memory on rank 1");
  });
  EXPECT_EQ(o.type, "runtime_error");
  EXPECT_EQ(o.message, "out of memory on rank 1");
}

TEST(Agree, TheLowestFailingRankDecidesTypeAndMessage) {
  MpiCommunicator c(MPI_COMM_WORLD);
  Outcome o = run_agree(c, [&] {
    if (c.rank() == 0) throw InputError("input on 0");
    throw std::out_of_range("range on " + std::to_string(c.rank()));
  });
  EXPECT_EQ(o.type, "InputError");
  EXPECT_EQ(o.message, "input on 0");

  o = run_agree(c, [&] {
    if (c.rank() == 0) throw std::out_of_range("range on 0");
    throw InputError("input on " + std::to_string(c.rank()));
  });
  EXPECT_EQ(o.type, "runtime_error");  // derived types become std::runtime_error on every rank
  EXPECT_EQ(o.message, "range on 0");

  o = run_agree(c, [&] {
    if (c.rank() == c.size() - 1) throw 42;
  });
  EXPECT_EQ(o.type, "runtime_error");
  EXPECT_EQ(o.message, "unknown exception");

  // IoError (a failed write) and invalid_argument (a caller's bug) keep their types.
  o = run_agree(c, [&] {
    if (c.rank() == c.size() - 1) throw IoError("disk full on " + std::to_string(c.rank()));
  });
  EXPECT_EQ(o.type, "IoError");
  EXPECT_EQ(o.message, "disk full on " + std::to_string(c.size() - 1));
  o = run_agree(c, [&] {
    if (c.rank() == 0) throw std::invalid_argument("bad call");
  });
  EXPECT_EQ(o.type, "invalid_argument");

  // The group is still in step: a collective after the failures completes.
  int64_t one = 1;
  c.all_reduce(&one, 1, ReduceOp::Sum);
  EXPECT_EQ(one, c.size());
}

// A blocking operation's deadline (parallel/deadline.h): the message the watchdog prints names
// the operation, the group and the step; nested scopes time the innermost, and leaving it
// resumes the one around it. (That the watchdog ends a job is tested through the binary:
// test_faults and tests/fault_drill.sh.)
TEST(Deadline, ReportNamesTheOperationTheGroupAndTheStep) {
  EXPECT_EQ(deadline_report(1.0), "");
  set_comm_timeout(5.0);
  set_deadline_step(12);
  {
    const Deadline outer("MPI_Allreduce", "floats", 8, "tensor-parallel", 2);
    const std::string m = deadline_report(6.0);
    EXPECT_NE(m.find("MPI_Allreduce of 8 floats on the tensor-parallel group (2 ranks) did not "
                     "complete within runtime.comm_timeout = 5 s (at step 12; waited 6.0 s)"),
              std::string::npos)
        << m;
    {
      const Deadline inner("MPI_Bcast", "", 0, "world", 3);
      EXPECT_NE(deadline_report(7.0).find("MPI_Bcast on the world group (3 ranks)"),
                std::string::npos);
    }
    EXPECT_NE(deadline_report(6.0).find("MPI_Allreduce"), std::string::npos);
  }
  set_deadline_step(0);
  {
    const Deadline d("creating the process grid", "", 0, "world", 2);
    EXPECT_NE(deadline_report(6.0).find("(before the first step;"), std::string::npos);
  }
  EXPECT_EQ(deadline_report(6.0), "");
  set_comm_timeout(600.0);
}

}  // namespace
}  // namespace ph
