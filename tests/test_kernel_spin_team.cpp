// The spinning team of the packed products (kernels/cpu/spin_team.h): every task runs exactly
// once for any task and helper count, back-to-back runs and runs after the helpers went to
// sleep, that a run waits for the helpers' tasks, a run inside a run, runs from two threads at
// once, and that the helpers do share the work.
#include <gtest/gtest.h>
#include <omp.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "kernels/cpu/spin_team.h"

namespace ph {
namespace {

// Runs `tasks` tasks on `helpers` helpers; every task must run exactly once.
void expect_each_once(int tasks, int helpers) {
  std::vector<std::atomic<int>> runs(static_cast<size_t>(std::max(tasks, 0)));
  cpu::spin_team_run(tasks, helpers, [&](int t) { runs[static_cast<size_t>(t)].fetch_add(1); });
  for (int t = 0; t < tasks; ++t)
    ASSERT_EQ(runs[static_cast<size_t>(t)].load(), 1)
        << "task " << t << " of " << tasks << ", " << helpers << " helpers";
}

// A task that lasts until a helper has taken a task of the run (`on_helper` > 0), or 1 ms at
// most: with enough of them a helper joins even on a loaded machine, and once it has the rest
// are quick. Counts the tasks that ran on another thread than `caller`.
void wait_for_a_helper(std::atomic<int>& on_helper, std::thread::id caller) {
  if (std::this_thread::get_id() != caller) on_helper.fetch_add(1);
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
  while (on_helper.load() == 0 && std::chrono::steady_clock::now() < until) {
  }
}

TEST(SpinTeam, EveryTaskRunsExactlyOnce) {
  for (const int helpers : {0, 1, 3})
    for (const int tasks : {0, 1, 2, 7, 64, 1000}) expect_each_once(tasks, helpers);
  for (int run = 0; run < 2000; ++run) expect_each_once(1 + run % 13, 1);  // back to back
}

TEST(SpinTeam, RunsAfterTheHelpersSleep) {
  for (int run = 0; run < 3; ++run) {
    std::this_thread::sleep_for(std::chrono::microseconds(5 * cpu::kSpinMicros));
    expect_each_once(50, 1);
  }
}

TEST(SpinTeam, TheHelpersShareTheWork) {
  if (omp_get_num_procs() < 2) GTEST_SKIP() << "one processor: no helper";
  std::atomic<int> on_helper{0};
  const std::thread::id caller = std::this_thread::get_id();
  cpu::spin_team_run(2000, 1, [&](int) { wait_for_a_helper(on_helper, caller); });
  EXPECT_GT(on_helper.load(), 0) << "the helper took no task in ~2 s";
}

TEST(SpinTeam, ARunReturnsOnlyWhenEveryTaskHasEnded) {
  if (omp_get_num_procs() < 2) GTEST_SKIP() << "one processor: no helper";
  for (int run = 0; run < 20; ++run) {
    std::atomic<int> ended{0};
    // Two tasks of unequal length: the caller's or the helper's ends last.
    cpu::spin_team_run(2, 1, [&](int t) {
      std::this_thread::sleep_for(std::chrono::microseconds(t == run % 2 ? 2000 : 100));
      ended.fetch_add(1);
    });
    ASSERT_EQ(ended.load(), 2) << "run " << run;
  }
}

TEST(SpinTeam, AHelperRunsOpenMpOnItsThreadAlone) {
  if (omp_get_num_procs() < 2) GTEST_SKIP() << "one processor: no helper";
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> on_helper{0}, wide{0};
  cpu::spin_team_run(2000, 1, [&](int) {
    wait_for_a_helper(on_helper, caller);
    if (std::this_thread::get_id() != caller && omp_get_max_threads() != 1) wide.fetch_add(1);
  });
  EXPECT_GT(on_helper.load(), 0);
  EXPECT_EQ(wide.load(), 0) << "a helper would open OpenMP teams of its own";
}

TEST(SpinTeam, ARunInsideARunRunsOnItsThread) {
  // Outer tasks that wait for the helper to take some: a run asked for there must not wait for
  // the team it is part of.
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<int> inner{0}, on_helper{0};
  cpu::spin_team_run(2000, 1, [&](int) {
    const std::thread::id me = std::this_thread::get_id();
    wait_for_a_helper(on_helper, caller);
    cpu::spin_team_run(5, 1, [&](int) {
      EXPECT_EQ(std::this_thread::get_id(), me);
      inner.fetch_add(1);
    });
  });
  EXPECT_EQ(inner.load(), 5 * 2000);
  if (omp_get_num_procs() >= 2) {
    EXPECT_GT(on_helper.load(), 0) << "the helper took no task";
  }
}

TEST(SpinTeam, RunsFromTwoThreadsAreSerialised) {
  std::vector<std::thread> callers;
  for (int c = 0; c < 2; ++c)
    callers.emplace_back([] {
      for (int run = 0; run < 300; ++run) expect_each_once(17, 1);
    });
  for (std::thread& t : callers) t.join();
}

}  // namespace
}  // namespace ph
