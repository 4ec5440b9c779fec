#include "parallel/deadline.h"

#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

namespace ph {

namespace {

using Clock = std::chrono::steady_clock;

// One open scope. The MPI thread writes the descriptive fields before it publishes the entry
// (g_depth, release) and the watchdog reads them after (acquire).
struct Entry {
  std::atomic<int64_t> start_ns{0};
  const char* operation = "";
  const char* what = "";
  size_t count = 0;
  const char* group = "";
  int group_size = 0;
};

constexpr int kMaxDepth = 8;  // deeper scopes are not timed (their outer scope still is)
Entry g_stack[kMaxDepth];
std::atomic<int> g_depth{0};
std::atomic<double> g_timeout{600.0};
std::atomic<int64_t> g_step{0};
std::atomic<int> g_rank{-1};
std::once_flag g_watchdog;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch())
      .count();
}

std::string report(const Entry& e, double waited) {
  char what[96] = "";
  if (e.what[0]) std::snprintf(what, sizeof what, " of %zu %s", e.count, e.what);
  char step[48] = "before the first step";
  const int64_t s = g_step.load();
  if (s > 0) std::snprintf(step, sizeof step, "at step %lld", static_cast<long long>(s));
  char rank[32] = "";
  if (g_rank.load() >= 0) std::snprintf(rank, sizeof rank, " (rank %d)", g_rank.load());
  char msg[512];
  std::snprintf(msg, sizeof msg,
                "polyhead: error%s: %s%s on the %s group (%d ranks) did not complete within "
                "runtime.comm_timeout = %g s (%s; waited %.1f s): a rank of the group is hung or "
                "dead; ending the job\n",
                rank, e.operation, what, e.group, e.group_size, g_timeout.load(), step, waited);
  return msg;
}

// Rank r reports this much after rank 0, so that one report ends the job.
double stagger() {
  return 0.5 * static_cast<double>(std::max(g_rank.load(), 0) % 16);
}

[[noreturn]] void watchdog() {
  for (;;) {
    const double timeout = g_timeout.load();
    std::this_thread::sleep_for(
        std::chrono::duration<double>(std::clamp(timeout / 20.0, 0.01, 0.25)));
    const int depth = std::min(g_depth.load(std::memory_order_acquire), kMaxDepth);
    if (depth == 0) continue;
    const Entry& e = g_stack[depth - 1];
    const int64_t start = e.start_ns.load();
    const double waited = static_cast<double>(now_ns() - start) * 1e-9;
    if (start == 0 || waited <= timeout + stagger()) continue;
    const std::string msg = report(e, waited);
    if (::write(STDERR_FILENO, msg.data(), msg.size()) < 0) {
      // nothing more can be said
    }
    std::_Exit(1);
  }
}

void start_watchdog() {
  int initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  if (initialized && !finalized) {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    g_rank.store(rank);
  }
  std::thread(watchdog).detach();
}

}  // namespace

void set_comm_timeout(double seconds) {
  g_timeout.store(seconds);
}

void set_deadline_step(int64_t step) {
  g_step.store(step);
}

Deadline::Deadline(const char* operation, const char* what, size_t count, const char* group,
                   int group_size) {
  std::call_once(g_watchdog, start_watchdog);
  const int depth = g_depth.load(std::memory_order_relaxed);
  if (depth < kMaxDepth) {
    Entry& e = g_stack[depth];
    e.operation = operation;
    e.what = what;
    e.count = count;
    e.group = group;
    e.group_size = group_size;
    e.start_ns.store(now_ns());
  }
  g_depth.store(depth + 1, std::memory_order_release);
}

Deadline::~Deadline() {
  const int depth = g_depth.load(std::memory_order_relaxed) - 1;
  g_depth.store(depth, std::memory_order_release);
  // The scope around this one starts its wait again.
  if (depth > 0 && depth <= kMaxDepth) g_stack[depth - 1].start_ns.store(now_ns());
}

std::string deadline_report(double waited) {
  const int depth = std::min(g_depth.load(std::memory_order_acquire), kMaxDepth);
  return depth == 0 ? std::string() : report(g_stack[depth - 1], waited);
}

}  // namespace ph
