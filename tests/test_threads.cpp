// Threads per rank (trainer/cli_setup.h): runtime.threads when set; with 0, OMP_NUM_THREADS
// when set (it used to be ignored), else the cores a bound rank may use, else the node's cores
// shared among its ranks. Checked on the function and through `polyhead train --dry-run`.
#include <gtest/gtest.h>

#include <string>

#include "test_util.h"
#include "trainer/cli_setup.h"

namespace ph {
namespace {

using testing::run_command;

TEST(Threads, OmpNumThreadsWinsWhenSet) {
  EXPECT_EQ(default_threads("3", 8, 8, 2), 3);
  EXPECT_EQ(default_threads("4,2", 8, 8, 1), 4);  // nested levels: the first is the ranks'
  EXPECT_EQ(default_threads("1", 1, 8, 1), 1);
}

TEST(Threads, WithoutOmpNumThreadsTheNodeIsShared) {
  EXPECT_EQ(default_threads(nullptr, 8, 8, 2), 4);  // unbound: 8 cores, 2 ranks
  EXPECT_EQ(default_threads("", 8, 8, 3), 2);
  EXPECT_EQ(default_threads(nullptr, 8, 8, 16), 1);  // more ranks than cores
  EXPECT_EQ(default_threads(nullptr, 2, 8, 4), 2);   // bound to 2 of the 8 cores
  EXPECT_EQ(default_threads(nullptr, 0, 8, 1), 8);   // affinity unknown
}

TEST(Threads, BadOmpNumThreadsIsNamed) {
  for (const char* bad : {"abc", "0", "-2", "2x", ",4"}) {
    try {
      default_threads(bad, 8, 8, 1);
      ADD_FAILURE() << "OMP_NUM_THREADS=" << bad << " accepted";
    } catch (const InputError& e) {
      const std::string want = std::string("OMP_NUM_THREADS=") + bad + ": not a positive";
      EXPECT_EQ(std::string(e.what()).rfind(want, 0), 0u) << e.what();
    }
  }
}

// The thread count the dry run reports, under the environment `env` and the overrides `extra`.
std::string dry_run(const std::string& env, const std::string& extra) {
  const auto r = run_command(env + " " + testing::polyhead_binary() + " train " +
                             testing::source_dir() + "/configs/tiny.yaml --dry-run " + extra);
  return r.output;
}

TEST(Threads, TheBinaryHonoursOmpNumThreads) {
  EXPECT_NE(dry_run("OMP_NUM_THREADS=1", "").find("; 1 threads per rank;"), std::string::npos)
      << dry_run("OMP_NUM_THREADS=1", "");
  EXPECT_NE(dry_run("OMP_NUM_THREADS=3", "").find("; 3 threads per rank;"), std::string::npos);
  // runtime.threads, when set, wins over the environment.
  EXPECT_NE(dry_run("OMP_NUM_THREADS=3", "runtime.threads=2").find("; 2 threads per rank;"),
            std::string::npos);
  // Bound to one core and no OMP_NUM_THREADS: one thread.
  EXPECT_NE(dry_run("env -u OMP_NUM_THREADS taskset -c 0", "").find("; 1 threads per rank;"),
            std::string::npos);
  const auto bad = run_command("OMP_NUM_THREADS=many " + testing::polyhead_binary() + " train " +
                               testing::source_dir() + "/configs/tiny.yaml --dry-run");
  EXPECT_EQ(bad.exit_code, 2) << bad.output;
  EXPECT_EQ(testing::count_occurrences(bad.output, "OMP_NUM_THREADS=many: not a positive number"),
            1)
      << bad.output;
}

}  // namespace
}  // namespace ph
