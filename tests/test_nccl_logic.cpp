// NcclCommunicator's logic against a fake device: the fake records every stream operation and
// NCCL call, and the test decides when events complete, when NCCL reports ncclInProgress or an
// error, and how fast the clock runs. No GPU, CUDA or NCCL is involved. The fatal handler
// throws Fatal instead of ending the job.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "parallel/nccl/device_ops.h"
#include "parallel/nccl/nccl_communicator.h"

namespace ph {
namespace {

using nccl::Collective;
using nccl::CollectiveCall;
using nccl::DataType;
using nccl::OpStatus;
using nccl::Stream;

struct Fatal : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// What the fake device did and will do; owned by the test, so it outlives the communicator.
struct Device {
  std::vector<std::string> log;       // stream operations and NCCL calls, in order
  std::vector<CollectiveCall> calls;  // every enqueued NCCL call
  std::vector<int> done_events;       // the event recorded on the comm stream after each call
  std::set<int> completed;            // events whose last record has completed
  bool auto_complete = false;         // every query answers "complete"
  double time = 0;                    // now()
  double tick = 1;                    // idle() advances the clock by this
  int idles = 0;
  // comm_state() answers Pending this many times after init / enqueue / finalize answered
  // Pending (-1: forever); 0: those calls answer Ok.
  int init_pending = 0;
  int enqueue_pending = 0;
  int finalize_pending = 0;
  int pending_left = 0;
  std::string init_error, enqueue_error, query_error, async_error;
  int aborts = 0;
  int calls_after_abort = 0;  // device operations attempted after abort()
  float scratch = 0;

  void complete(size_t op) { completed.insert(done_events.at(op)); }
  void complete_all() { completed.insert(done_events.begin(), done_events.end()); }
  size_t index(const std::string& entry, size_t from = 0) const {
    const auto it = std::find(log.begin() + static_cast<std::ptrdiff_t>(from), log.end(), entry);
    return static_cast<size_t>(it - log.begin());
  }
  bool logged(const std::string& entry) const { return index(entry) < log.size(); }
};

const char* type_name(DataType t) {
  switch (t) {
    case DataType::Float32:
      return "f32";
    case DataType::Float64:
      return "f64";
    case DataType::Int64:
      return "i64";
    case DataType::Char:
      return "char";
  }
  return "?";
}

const char* op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum:
      return "sum";
    case ReduceOp::Max:
      return "max";
    case ReduceOp::Min:
      return "min";
    case ReduceOp::Avg:
      return "avg";
  }
  return "?";
}

std::string describe(const CollectiveCall& c) {
  const std::string n = " n=" + std::to_string(c.count);
  switch (c.kind) {
    case Collective::AllReduce:
      return std::string("all_reduce ") + type_name(c.type) + " " + op_name(c.op) + n;
    case Collective::AllGather:
      return std::string("all_gather ") + type_name(c.type) + n;
    case Collective::ReduceScatter:
      return std::string("reduce_scatter ") + type_name(c.type) + " " + op_name(c.op) + n;
    case Collective::Broadcast:
      return std::string("broadcast ") + type_name(c.type) + " root=" + std::to_string(c.root) + n;
  }
  return "?";
}

std::string stream_name(Stream s) {
  return s == Stream::Compute ? "compute" : "comm";
}

class FakeOps final : public nccl::DeviceOps {
 public:
  explicit FakeOps(Device& d) : d_(d) {}

  OpStatus init(int events) override {
    device_call();
    d_.log.push_back("init events=" + std::to_string(events));
    if (!d_.init_error.empty()) return OpStatus::failed(d_.init_error);
    return start_pending(d_.init_pending);
  }
  OpStatus record(int event, Stream stream) override {
    device_call();
    d_.log.push_back("record " + stream_name(stream) + " e" + std::to_string(event));
    d_.completed.erase(event);
    if (stream == Stream::Comm) d_.done_events.push_back(event);
    return OpStatus::ok();
  }
  OpStatus stream_wait(Stream waiter, int event) override {
    device_call();
    d_.log.push_back("wait " + stream_name(waiter) + " e" + std::to_string(event));
    return OpStatus::ok();
  }
  OpStatus enqueue(const CollectiveCall& call) override {
    device_call();
    d_.log.push_back(describe(call));
    d_.calls.push_back(call);
    if (!d_.enqueue_error.empty()) return OpStatus::failed(d_.enqueue_error);
    return start_pending(d_.enqueue_pending);
  }
  OpStatus query(int event) override {
    device_call();
    if (!d_.query_error.empty()) return OpStatus::failed(d_.query_error);
    return d_.auto_complete || d_.completed.count(event) ? OpStatus::ok() : OpStatus::pending();
  }
  OpStatus comm_state() override {
    device_call();
    if (!d_.async_error.empty()) return OpStatus::failed(d_.async_error);
    if (d_.pending_left == 0) return OpStatus::ok();
    if (d_.pending_left > 0) --d_.pending_left;
    d_.log.push_back("state pending");
    return OpStatus::pending();
  }
  OpStatus finalize() override {
    device_call();
    d_.log.push_back("finalize");
    return start_pending(d_.finalize_pending);
  }
  void abort() override {
    ++d_.aborts;
    d_.log.push_back("abort");
  }
  double now() override { return d_.time; }
  void idle() override {
    ++d_.idles;
    d_.time += d_.tick;
  }
  float* scratch() override { return &d_.scratch; }

 private:
  void device_call() {
    if (d_.aborts > 0) ++d_.calls_after_abort;
  }
  OpStatus start_pending(int polls) {
    d_.pending_left = polls;
    return polls == 0 ? OpStatus::ok() : OpStatus::pending();
  }
  Device& d_;
};

std::unique_ptr<NcclCommunicator> make_comm(Device& d, int rank = 0, int size = 2,
                                            double timeout = 10) {
  return std::make_unique<NcclCommunicator>(
      std::make_unique<FakeOps>(d), rank, size, timeout,
      [](const std::string& message) { throw Fatal(message); });
}

// The text of the Fatal that f throws (the test fails when it throws none).
template <typename F>
std::string fatal_message(F&& f) {
  try {
    f();
  } catch (const Fatal& e) {
    return e.what();
  }
  ADD_FAILURE() << "no fatal error";
  return "";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

std::string ev(int e) {
  return "e" + std::to_string(e);
}

// Op k of the log went compute → comm → compute: `ready` recorded on the compute stream, the
// comm stream waits on it, the call, `done` recorded on the comm stream, and (once observed
// complete) the compute stream waits on `done`.
void expect_stream_order(const Device& d, const std::string& call, int ready, int done,
                         bool completed) {
  const size_t rec = d.index("record compute " + ev(ready));
  const size_t wait_comm = d.index("wait comm " + ev(ready), rec);
  const size_t enq = d.index(call, wait_comm);
  const size_t rec_done = d.index("record comm " + ev(done), enq);
  ASSERT_LT(rec, d.log.size()) << call;
  EXPECT_LT(wait_comm, d.log.size()) << call;
  EXPECT_LT(enq, d.log.size()) << call;
  EXPECT_LT(rec_done, d.log.size()) << call;
  EXPECT_EQ(d.index("wait compute " + ev(done), rec_done) < d.log.size(), completed) << call;
}

TEST(NcclLogic, ConstructionStartsTheCommunicatorWithTwoEventsPerSlot) {
  Device d;
  auto comm = make_comm(d, 1, 4);
  EXPECT_EQ(comm->rank(), 1);
  EXPECT_EQ(comm->size(), 4);
  EXPECT_EQ(d.log, std::vector<std::string>{
                       "init events=" + std::to_string(2 * (NcclCommunicator::kPoolSlots + 1))});
  comm.reset();
  EXPECT_EQ(d.log.back(), "finalize");
  EXPECT_EQ(d.aborts, 0);
}

TEST(NcclLogic, ConstructorChecksItsArguments) {
  Device d;
  for (double t : {0.0, -1.0, std::nan(""), std::numeric_limits<double>::infinity()})
    EXPECT_THROW(make_comm(d, 0, 2, t), std::invalid_argument) << t;
  EXPECT_THROW(make_comm(d, 2, 2), std::invalid_argument);
  EXPECT_THROW(make_comm(d, -1, 2), std::invalid_argument);
  EXPECT_THROW(make_comm(d, 0, 0), std::invalid_argument);
  EXPECT_THROW(NcclCommunicator(nullptr, 0, 1, 10), std::invalid_argument);
  EXPECT_TRUE(d.log.empty());
}

TEST(NcclLogic, NonblockingInitIsPolledUntilReady) {
  Device d;
  d.init_pending = 3;
  auto comm = make_comm(d);
  EXPECT_EQ(std::count(d.log.begin(), d.log.end(), "state pending"), 3);
  EXPECT_EQ(d.aborts, 0);
}

TEST(NcclLogic, InitThatNeverCompletesTimesOut) {
  Device d;
  d.init_pending = -1;
  const std::string m = fatal_message([&] { make_comm(d, 3, 8, 30); });
  EXPECT_TRUE(contains(m, "communicator initialisation")) << m;
  EXPECT_TRUE(contains(m, "group rank 3 of 8")) << m;
  EXPECT_TRUE(contains(m, "timed out after 30 s")) << m;
  EXPECT_EQ(d.aborts, 1);
}

TEST(NcclLogic, InitErrorIsFatal) {
  Device d;
  d.init_error = "ncclCommInitRankConfig: unhandled system error (ncclResult_t 2)";
  const std::string m = fatal_message([&] { make_comm(d); });
  EXPECT_TRUE(contains(m, "failed: " + d.init_error)) << m;
  EXPECT_EQ(d.aborts, 1);
}

// Data parallelism: several gradient buckets are reduced asynchronously while backward goes
// on, then all are waited for.
TEST(NcclLogic, BucketedAsyncAllReducesIssueInOrderAndOverlapCompute) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> b0(3), b1(5), b2(7);
  std::vector<Work> works;
  works.push_back(comm->all_reduce_async(b0.data(), b0.size(), ReduceOp::Avg));
  works.push_back(comm->all_reduce_async(b1.data(), b1.size(), ReduceOp::Avg));
  works.push_back(comm->all_reduce_async(b2.data(), b2.size(), ReduceOp::Avg));
  EXPECT_EQ(comm->slots_in_use(), 3);

  const std::vector<std::string> issued = {
      "record compute e0", "wait comm e0", "all_reduce f32 avg n=3", "record comm e1",
      "record compute e2", "wait comm e2", "all_reduce f32 avg n=5", "record comm e3",
      "record compute e4", "wait comm e4", "all_reduce f32 avg n=7", "record comm e5"};
  EXPECT_EQ(std::vector<std::string>(d.log.begin() + 1, d.log.end()), issued);
  ASSERT_EQ(d.calls.size(), 3u);
  EXPECT_EQ(d.calls[0].send, b0.data());
  EXPECT_EQ(d.calls[0].recv, b0.data());
  EXPECT_EQ(d.calls[2].recv, b2.data());

  d.complete_all();
  for (Work& w : works) w.wait();
  EXPECT_EQ(comm->slots_in_use(), 0);
  for (const auto& [call, ready] : {std::pair{"all_reduce f32 avg n=3", 0},
                                    {"all_reduce f32 avg n=5", 2},
                                    {"all_reduce f32 avg n=7", 4}})
    expect_stream_order(d, call, ready, ready + 1, true);
  const std::vector<std::string> waited = {"wait compute e1", "wait compute e3", "wait compute e5"};
  EXPECT_EQ(std::vector<std::string>(d.log.end() - 3, d.log.end()), waited);
  EXPECT_EQ(d.idles, 0);  // everything was already complete
}

TEST(NcclLogic, WaitPollsUntilTheDeviceCompletes) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> buf(4);
  Work w = comm->all_reduce_async(buf.data(), buf.size(), ReduceOp::Sum);
  EXPECT_FALSE(w.done());
  EXPECT_FALSE(d.logged("wait compute e1"));
  d.complete(0);
  EXPECT_TRUE(w.done());
  EXPECT_FALSE(w.pending());
  EXPECT_EQ(d.log.back(), "wait compute e1");
  EXPECT_EQ(comm->slots_in_use(), 0);
  EXPECT_EQ(d.idles, 0);
}

TEST(NcclLogic, BlockingFormsUseTheReservedSlotAndOrderComputeAfterThem) {
  Device d;
  d.auto_complete = true;
  auto comm = make_comm(d);
  std::vector<double> buf(6);
  comm->all_reduce(buf.data(), buf.size(), ReduceOp::Max);
  const int ready = 2 * NcclCommunicator::kPoolSlots;
  const std::vector<std::string> expected = {
      "record compute " + ev(ready), "wait comm " + ev(ready), "all_reduce f64 max n=6",
      "record comm " + ev(ready + 1), "wait compute " + ev(ready + 1)};
  EXPECT_EQ(std::vector<std::string>(d.log.begin() + 1, d.log.end()), expected);
  EXPECT_EQ(comm->slots_in_use(), 0);
}

TEST(NcclLogic, WorkReleasesItsSlotOnWaitDoneAndDestruction) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> a(2), b(2), c(2);
  Work wa = comm->all_reduce_async(a.data(), 2, ReduceOp::Sum);
  {
    Work wb = comm->all_reduce_async(b.data(), 2, ReduceOp::Sum);
    Work wc = comm->all_reduce_async(c.data(), 2, ReduceOp::Sum);
    EXPECT_EQ(comm->slots_in_use(), 3);
    d.complete_all();
    EXPECT_TRUE(wc.done());
    EXPECT_EQ(comm->slots_in_use(), 2);
  }  // wb's destructor waits
  EXPECT_EQ(comm->slots_in_use(), 1);
  EXPECT_TRUE(d.logged("wait compute e3"));
  Work moved = std::move(wa);
  EXPECT_FALSE(wa.pending());
  EXPECT_TRUE(moved.pending());
  moved.wait();
  EXPECT_EQ(comm->slots_in_use(), 0);
  // A released slot is reused, with its own events.
  Work again = comm->all_reduce_async(a.data(), 2, ReduceOp::Sum);
  EXPECT_EQ(d.log.back(), "record comm e1");
  d.complete_all();
}

TEST(NcclLogic, ProgressObservesCompletionWithoutBlockingOrReleasing) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> a(2), b(2);
  Work wa = comm->all_reduce_async(a.data(), 2, ReduceOp::Sum);
  Work wb = comm->all_reduce_async(b.data(), 2, ReduceOp::Sum);
  comm->progress();
  EXPECT_EQ(d.idles, 0);
  EXPECT_FALSE(d.logged("wait compute e1"));
  d.complete(0);
  comm->progress();
  EXPECT_TRUE(d.logged("wait compute e1"));
  EXPECT_FALSE(d.logged("wait compute e3"));
  EXPECT_EQ(comm->slots_in_use(), 2);  // the Work still holds its slot
  EXPECT_TRUE(wa.done());
  EXPECT_EQ(std::count(d.log.begin(), d.log.end(), "wait compute e1"), 1);
  EXPECT_EQ(comm->slots_in_use(), 1);
  d.complete(1);
  wb.wait();
  EXPECT_EQ(d.idles, 0);
}

TEST(NcclLogic, ExhaustedPoolIsALogicErrorButBlockingFormsStillRun) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> buf(1);
  std::vector<Work> works;
  for (int i = 0; i < NcclCommunicator::kPoolSlots; ++i)
    works.push_back(comm->all_reduce_async(buf.data(), 1, ReduceOp::Sum));
  const size_t logged = d.log.size();
  try {
    works.push_back(comm->all_reduce_async(buf.data(), 1, ReduceOp::Sum));
    ADD_FAILURE() << "no logic_error";
  } catch (const std::logic_error& e) {
    EXPECT_TRUE(contains(e.what(), "exhausted")) << e.what();
  }
  EXPECT_EQ(d.log.size(), logged);  // nothing reached the device
  d.auto_complete = true;
  comm->all_reduce(buf.data(), 1, ReduceOp::Sum);
  comm->barrier();
  EXPECT_EQ(comm->slots_in_use(), NcclCommunicator::kPoolSlots);
  works.clear();
  EXPECT_EQ(comm->slots_in_use(), 0);
}

TEST(NcclLogic, TimeoutAbortsOnceAndNamesTheOperation) {
  Device d;
  auto comm = make_comm(d, 1, 4, 5);
  std::vector<float> buf(1000);
  Work w = comm->all_reduce_async(buf.data(), buf.size(), ReduceOp::Sum);
  const std::string m = fatal_message([&] { w.wait(); });
  EXPECT_TRUE(contains(m, "all_reduce_async")) << m;
  EXPECT_TRUE(contains(m, "count 1000")) << m;
  EXPECT_TRUE(contains(m, "group rank 1 of 4")) << m;
  EXPECT_TRUE(contains(m, "timed out after 5 s")) << m;
  EXPECT_GE(d.time, 5);
  EXPECT_LE(d.time, 7);  // polled until just past the deadline
  EXPECT_EQ(d.aborts, 1);

  // Once aborted, nothing else reaches the device and nothing aborts again.
  const std::string again = fatal_message([&] { comm->all_reduce(buf.data(), 10, ReduceOp::Sum); });
  EXPECT_TRUE(contains(again, "aborted")) << again;
  comm->progress();
  w.wait();  // released without waiting
  EXPECT_FALSE(w.pending());
  comm.reset();
  EXPECT_EQ(d.aborts, 1);
  EXPECT_EQ(d.calls_after_abort, 0);
}

TEST(NcclLogic, BlockingFormTimesOut) {
  Device d;
  auto comm = make_comm(d, 0, 2, 3);
  std::vector<float> send(8), recv(4);
  const std::string m =
      fatal_message([&] { comm->reduce_scatter(send.data(), recv.data(), 4, ReduceOp::Sum); });
  EXPECT_TRUE(contains(m, "NCCL reduce_scatter (count 4, group rank 0 of 2) timed out after 3 s"))
      << m;
  EXPECT_EQ(d.aborts, 1);
}

TEST(NcclLogic, ProgressReportsATimeoutWithoutBlocking) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> buf(16);
  Work w = comm->all_gather_async(buf.data(), buf.data(), 8);
  d.time = 10;
  comm->progress();  // exactly at the deadline: not late yet
  d.time = 10.5;
  const std::string m = fatal_message([&] { comm->progress(); });
  EXPECT_TRUE(contains(m, "all_gather_async (count 8")) << m;
  EXPECT_TRUE(contains(m, "timed out after 10 s")) << m;
  EXPECT_EQ(d.idles, 0);
  EXPECT_EQ(d.aborts, 1);
}

TEST(NcclLogic, CompletedButUnobservedOperationIsNotATimeout) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> a(2), b(2);
  Work wa = comm->all_reduce_async(a.data(), 2, ReduceOp::Sum);
  d.complete(0);
  d.time = 100;  // far past wa's deadline, but it completed on the device
  Work wb = comm->all_reduce_async(b.data(), 2, ReduceOp::Sum);
  comm->progress();
  EXPECT_FALSE(wb.done());
  EXPECT_EQ(d.aborts, 0);
  d.complete(1);
  wb.wait();
  wa.wait();
  EXPECT_EQ(d.aborts, 0);
}

TEST(NcclLogic, TheOldestLateOperationIsNamed) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> a(111), b(222);
  Work wa = comm->all_reduce_async(a.data(), a.size(), ReduceOp::Sum);
  d.time = 4;
  Work wb = comm->all_reduce_async(b.data(), b.size(), ReduceOp::Sum);
  const std::string m = fatal_message([&] { wb.wait(); });
  EXPECT_TRUE(contains(m, "count 111")) << m;
  EXPECT_LE(d.time, 12);  // wa's deadline (10), not wb's (14)
}

TEST(NcclLogic, AsyncErrorAbortsAndCarriesTheNcclMessage) {
  Device d;
  auto comm = make_comm(d, 2, 4);
  std::vector<float> buf(64);
  Work w = comm->all_reduce_async(buf.data(), buf.size(), ReduceOp::Avg);
  EXPECT_FALSE(w.done());
  d.async_error =
      "asynchronous NCCL error: remote process exited or there was a network error "
      "(ncclResult_t 6)";
  const std::string m = fatal_message([&] { w.wait(); });
  EXPECT_TRUE(contains(m, "NCCL all_reduce_async (count 64, group rank 2 of 4) failed: ")) << m;
  EXPECT_TRUE(contains(m, d.async_error)) << m;
  EXPECT_EQ(d.aborts, 1);
  EXPECT_LT(d.time, 10);  // no waiting for the timeout
}

TEST(NcclLogic, AsyncErrorSeenByDoneAndProgress) {
  for (bool via_done : {true, false}) {
    Device d;
    auto comm = make_comm(d);
    std::vector<float> buf(4);
    Work w = comm->all_reduce_async(buf.data(), buf.size(), ReduceOp::Sum);
    d.async_error = "asynchronous NCCL error: internal error (ncclResult_t 3)";
    const std::string m = fatal_message([&] {
      if (via_done)
        (void)w.done();
      else
        comm->progress();
    });
    EXPECT_TRUE(contains(m, d.async_error)) << m;
    EXPECT_EQ(d.aborts, 1);
  }
}

TEST(NcclLogic, DeviceErrorsAreFatal) {
  Device d;
  auto comm = make_comm(d);
  std::vector<float> buf(4);
  d.enqueue_error = "ncclAllReduce: invalid usage (ncclResult_t 5)";
  std::string m = fatal_message([&] { comm->all_reduce(buf.data(), 4, ReduceOp::Sum); });
  EXPECT_TRUE(contains(m, "all_reduce (count 4, group rank 0 of 2) failed: " + d.enqueue_error))
      << m;
  EXPECT_FALSE(d.logged("record comm e" + std::to_string(2 * NcclCommunicator::kPoolSlots + 1)));

  Device q;
  auto comm_q = make_comm(q);
  Work w = comm_q->all_reduce_async(buf.data(), 4, ReduceOp::Sum);
  q.query_error = "cudaEventQuery: an illegal memory access was encountered";
  m = fatal_message([&] { w.wait(); });
  EXPECT_TRUE(contains(m, q.query_error)) << m;
  EXPECT_EQ(q.aborts, 1);
}

// A nonblocking NCCL communicator may answer ncclInProgress before the call is on the stream:
// the completion event must be recorded only after the state settles.
TEST(NcclLogic, InProgressEnqueueSettlesBeforeTheCompletionEvent) {
  Device d;
  d.enqueue_pending = 2;
  auto comm = make_comm(d);
  std::vector<float> buf(4);
  Work w = comm->all_reduce_async(buf.data(), buf.size(), ReduceOp::Sum);
  const std::vector<std::string> expected = {"record compute e0",      "wait comm e0",
                                             "all_reduce f32 sum n=4", "state pending",
                                             "state pending",          "record comm e1"};
  EXPECT_EQ(std::vector<std::string>(d.log.begin() + 1, d.log.end()), expected);
  d.complete_all();
  w.wait();
}

TEST(NcclLogic, EnqueueThatNeverSettlesTimesOut) {
  Device d;
  d.enqueue_pending = -1;
  auto comm = make_comm(d);
  std::vector<float> buf(4);
  const std::string m =
      fatal_message([&] { (void)comm->all_reduce_async(buf.data(), 4, ReduceOp::Sum); });
  EXPECT_TRUE(contains(m, "all_reduce_async (count 4, group rank 0 of 2) timed out")) << m;
  EXPECT_EQ(d.aborts, 1);
  EXPECT_FALSE(d.logged("record comm e1"));
}

TEST(NcclLogic, TypesAndReductionsReachNcclAsGiven) {
  Device d;
  d.auto_complete = true;
  auto comm = make_comm(d, 1, 3);
  std::vector<float> f(2);
  std::vector<double> g(2);
  std::vector<int64_t> i(2);
  std::vector<char> c(2);
  comm->all_reduce(f.data(), 2, ReduceOp::Avg);
  comm->all_reduce(g.data(), 2, ReduceOp::Avg);
  comm->all_reduce(i.data(), 2, ReduceOp::Max);
  comm->all_reduce(i.data(), 2, ReduceOp::Min);
  comm->all_reduce(i.data(), 2, ReduceOp::Sum);
  comm->all_reduce_async(g.data(), 2, ReduceOp::Min).wait();
  comm->broadcast(c.data(), 2, 2);
  comm->broadcast(i.data(), 2, 0);
  comm->broadcast(g.data(), 2, 1);
  comm->broadcast(f.data(), 2, 1);
  std::vector<std::string> got;
  for (const CollectiveCall& call : d.calls) got.push_back(describe(call));
  const std::vector<std::string> expected = {
      "all_reduce f32 avg n=2",    "all_reduce f64 avg n=2",   "all_reduce i64 max n=2",
      "all_reduce i64 min n=2",    "all_reduce i64 sum n=2",   "all_reduce f64 min n=2",
      "broadcast char root=2 n=2", "broadcast i64 root=0 n=2", "broadcast f64 root=1 n=2",
      "broadcast f32 root=1 n=2"};
  EXPECT_EQ(got, expected);
  EXPECT_EQ(d.calls[6].send, c.data());
  EXPECT_EQ(d.calls[6].recv, c.data());
}

TEST(NcclLogic, AvgOnInt64IsALogicErrorAndReachesNothing) {
  Device d;
  auto comm = make_comm(d);
  std::vector<int64_t> buf(4);
  const size_t logged = d.log.size();
  EXPECT_THROW(comm->all_reduce(buf.data(), buf.size(), ReduceOp::Avg), std::logic_error);
  EXPECT_EQ(d.log.size(), logged);
  EXPECT_EQ(comm->slots_in_use(), 0);
}

TEST(NcclLogic, AllGatherInPlaceIsPassedAsNcclExpectsIt) {
  Device d;
  d.auto_complete = true;
  auto comm = make_comm(d, 1, 4);
  std::vector<float> recv(20), send(5);
  comm->all_gather(recv.data() + 5, recv.data(), 5);  // rank 1's block: in place
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].kind, Collective::AllGather);
  EXPECT_EQ(d.calls[0].send, recv.data() + 5);
  EXPECT_EQ(d.calls[0].recv, recv.data());
  EXPECT_EQ(d.calls[0].count, 5u);
  comm->all_gather_async(send.data(), recv.data(), 5).wait();  // separate buffers
  EXPECT_EQ(d.calls[1].send, send.data());

  const size_t logged = d.log.size();
  for (size_t offset : {0, 3, 10, 17})  // overlapping recv, but not as rank 1's block
    EXPECT_THROW(comm->all_gather(recv.data() + offset, recv.data(), 5), std::logic_error)
        << offset;
  EXPECT_THROW((void)comm->all_gather_async(recv.data() + 3, recv.data(), 5), std::logic_error);
  EXPECT_EQ(d.log.size(), logged);
}

TEST(NcclLogic, ReduceScatterChecksOverlapAndPassesTheBlockCount) {
  Device d;
  d.auto_complete = true;
  auto comm = make_comm(d, 0, 2);
  std::vector<float> send(8), recv(4);
  comm->reduce_scatter(send.data(), recv.data(), 4, ReduceOp::Avg);
  comm->reduce_scatter_async(send.data(), recv.data(), 4, ReduceOp::Max).wait();
  ASSERT_EQ(d.calls.size(), 2u);
  EXPECT_EQ(describe(d.calls[0]), "reduce_scatter f32 avg n=4");
  EXPECT_EQ(describe(d.calls[1]), "reduce_scatter f32 max n=4");
  EXPECT_EQ(d.calls[0].send, send.data());
  EXPECT_EQ(d.calls[0].recv, recv.data());
  EXPECT_THROW(comm->reduce_scatter(send.data(), send.data() + 4, 4, ReduceOp::Sum),
               std::logic_error);
  EXPECT_THROW((void)comm->reduce_scatter_async(send.data(), send.data(), 4, ReduceOp::Sum),
               std::logic_error);
  EXPECT_EQ(d.calls.size(), 2u);
}

TEST(NcclLogic, ZeroCountsReachNothing) {
  Device d;
  auto comm = make_comm(d);
  float f = 0;
  int64_t i = 0;
  const size_t logged = d.log.size();
  comm->all_reduce(&f, 0, ReduceOp::Sum);
  comm->all_reduce(&i, 0, ReduceOp::Sum);
  EXPECT_FALSE(comm->all_reduce_async(&f, 0, ReduceOp::Sum).pending());
  comm->all_gather(&f, &f, 0);
  EXPECT_FALSE(comm->all_gather_async(&f, &f, 0).pending());
  comm->reduce_scatter(&f, &f, 0, ReduceOp::Sum);
  EXPECT_FALSE(comm->reduce_scatter_async(&f, &f, 0, ReduceOp::Sum).pending());
  comm->broadcast(&f, 0, 1);
  EXPECT_EQ(d.log.size(), logged);
}

TEST(NcclLogic, ArgumentChecks) {
  Device d;
  auto comm = make_comm(d, 0, 2);
  std::vector<float> buf(4);
  EXPECT_THROW(comm->broadcast(buf.data(), 4, 2), std::invalid_argument);
  EXPECT_THROW(comm->broadcast(buf.data(), 4, -1), std::invalid_argument);
  EXPECT_THROW(comm->all_reduce(static_cast<float*>(nullptr), 4, ReduceOp::Sum), std::logic_error);
  EXPECT_THROW(comm->all_gather(nullptr, buf.data(), 2), std::logic_error);
  EXPECT_EQ(d.log.size(), 1u);  // init only
}

TEST(NcclLogic, BarrierIsAWaitedOneElementAllReduceOnTheScratchWord) {
  Device d;
  d.auto_complete = true;
  auto comm = make_comm(d);
  comm->barrier();
  const int ready = 2 * NcclCommunicator::kPoolSlots;
  const std::vector<std::string> expected = {
      "record compute " + ev(ready), "wait comm " + ev(ready), "all_reduce f32 sum n=1",
      "record comm " + ev(ready + 1), "wait compute " + ev(ready + 1)};
  EXPECT_EQ(std::vector<std::string>(d.log.begin() + 1, d.log.end()), expected);
  ASSERT_EQ(d.calls.size(), 1u);
  EXPECT_EQ(d.calls[0].send, &d.scratch);
  EXPECT_EQ(d.calls[0].recv, &d.scratch);
}

TEST(NcclLogic, ShutdownFinalizesAndSettles) {
  Device d;
  d.finalize_pending = 2;
  make_comm(d).reset();
  const std::vector<std::string> tail = {"finalize", "state pending", "state pending"};
  EXPECT_EQ(std::vector<std::string>(d.log.end() - 3, d.log.end()), tail);
  EXPECT_EQ(d.aborts, 0);
}

// A rank that throws (a CUDA error, say) while its communicators exist: the stack unwinds
// through them while the peers may sit inside a collective. Finalizing would wait for them for
// the whole timeout and then end the job with an NCCL message instead of the original error, so
// the communicator aborts (no finalize, no waiting, no fatal handler) and the exception goes on.
TEST(NcclLogic, DestructionDuringUnwindingAbortsWithoutFinalizing) {
  Device d;
  d.auto_complete = true;
  d.finalize_pending = 3;  // a finalize would poll (and idle) three times
  std::string caught;
  try {
    auto comm = make_comm(d);
    std::vector<float> buf(4);
    comm->all_reduce(buf.data(), buf.size(), ReduceOp::Sum);
    throw std::runtime_error("CUDA error: an illegal memory access was encountered");
  } catch (const std::runtime_error& e) {
    caught = e.what();
  }
  EXPECT_EQ(caught, "CUDA error: an illegal memory access was encountered");  // not a Fatal
  EXPECT_EQ(d.aborts, 1);
  EXPECT_FALSE(d.logged("finalize"));
  EXPECT_FALSE(d.logged("state pending"));
  EXPECT_EQ(d.log.back(), "abort");
  EXPECT_EQ(d.idles, 0);  // no waiting
  EXPECT_EQ(d.time, 0);
  EXPECT_EQ(d.calls_after_abort, 0);
}

// The same with an operation in flight whose peers never join: the Work's destruction during
// unwinding aborts and releases its slot without polling the operation to its deadline, and the
// communicator's destruction then neither finalizes nor aborts again.
TEST(NcclLogic, WorkDestroyedDuringUnwindingAbortsWithoutWaiting) {
  Device d;
  auto comm = make_comm(d, 1, 2, 600);
  std::vector<float> buf(64);
  std::string caught;
  try {
    Work w = comm->all_reduce_async(buf.data(), buf.size(), ReduceOp::Sum);  // never completes
    throw std::runtime_error("CUDA error: out of memory");
  } catch (const std::runtime_error& e) {
    caught = e.what();
  }
  EXPECT_EQ(caught, "CUDA error: out of memory");
  EXPECT_EQ(d.aborts, 1);
  EXPECT_TRUE(comm->aborted());
  EXPECT_EQ(comm->slots_in_use(), 0);
  EXPECT_EQ(d.idles, 0);
  EXPECT_EQ(d.time, 0);
  EXPECT_FALSE(d.logged("wait compute e1"));  // never taken for complete
  comm.reset();
  EXPECT_FALSE(d.logged("finalize"));
  EXPECT_EQ(d.aborts, 1);
  EXPECT_EQ(d.calls_after_abort, 0);
}

// An exception thrown and caught while the communicator lives on is none of its business: it
// stays usable, and its normal destruction finalizes.
TEST(NcclLogic, AnExceptionCaughtInsideItsScopeLeavesItAlone) {
  Device d;
  d.auto_complete = true;
  d.finalize_pending = 2;
  {
    auto comm = make_comm(d);
    try {
      throw std::runtime_error("handled");
    } catch (const std::runtime_error&) {
      std::vector<float> buf(2);
      comm->all_reduce(buf.data(), buf.size(), ReduceOp::Sum);  // inside the handler
    }
    EXPECT_FALSE(comm->aborted());
  }
  EXPECT_EQ(d.aborts, 0);
  const std::vector<std::string> tail = {"finalize", "state pending", "state pending"};
  EXPECT_EQ(std::vector<std::string>(d.log.end() - 3, d.log.end()), tail);
}

// Unwinding is counted from the communicator's construction: one created and destroyed inside a
// destructor that runs during unwinding (std::uncaught_exceptions() == 1 throughout its life)
// ends normally.
TEST(NcclLogic, ACommunicatorCreatedDuringUnwindingFinalizesNormally) {
  Device d;
  d.auto_complete = true;
  struct MakesOneWhenDestroyed {
    Device& device;
    ~MakesOneWhenDestroyed() {
      auto comm = make_comm(device);
      std::vector<float> buf(2);
      comm->all_reduce(buf.data(), buf.size(), ReduceOp::Sum);
    }
  };
  try {
    MakesOneWhenDestroyed guard{d};
    throw std::runtime_error("unwinding");
  } catch (const std::runtime_error&) {
  }
  EXPECT_EQ(d.aborts, 0);
  EXPECT_EQ(d.log.back(), "finalize");
}

}  // namespace
}  // namespace ph
