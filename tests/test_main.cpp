// GoogleTest main shared by every test executable. It initialises MPI (HDF5 and the
// communicators need it even on one rank), runs the tests, and reduces the result over
// ranks so that a failure on any rank fails the whole test; only rank 0 prints the summary.
// A program whose every test was skipped (GTEST_SKIP: e.g. the gpu-labelled tests on a
// machine without a GPU) exits with kAllSkipped, which ctest reports as "Skipped".
// The paths a program read during static initialisation come from the environment
// (tests/test_paths.h): a required variable that is unset fails the program before any test
// runs, with one message per variable.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <string>
#include <vector>

#include "test_paths.h"

constexpr int kAllSkipped = 77;  // SKIP_RETURN_CODE in tests/CMakeLists.txt

// Prints (on rank 0) the messages of required variables found unset outside a test; whether
// there were any.
static bool report_missing_paths(int rank) {
  const std::vector<std::string>& messages = ph::testing::missing_path_messages();
  if (rank == 0) {
    for (const std::string& m : messages) std::fprintf(stderr, "%s\n", m.c_str());
  }
  return !messages.empty();
}

int main(int argc, char** argv) {
  ph::testing::snapshot_mpi_variables();  // what nested jobs keep (testing::mpiexec_command)
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (report_missing_paths(rank)) {  // read during static initialisation: no test can run
    MPI_Finalize();
    return 1;
  }
  ::testing::InitGoogleTest(&argc, argv);
  // Other ranks print their failures only (with the rank, so they can be told apart).
  if (rank != 0) GTEST_FLAG_SET(brief, true);
  int local_fail = RUN_ALL_TESTS() != 0 ? 1 : 0;
  if (report_missing_paths(rank)) local_fail = 1;  // read outside a test (a suite's set-up)
  int any_fail = 0;
  MPI_Allreduce(&local_fail, &any_fail, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (local_fail) std::fprintf(stderr, "rank %d: FAILED\n", rank);
  const testing::UnitTest& u = *testing::UnitTest::GetInstance();
  const bool all_skipped =
      u.test_to_run_count() > 0 && u.skipped_test_count() == u.test_to_run_count();
  MPI_Finalize();
  if (!any_fail && all_skipped) return kAllSkipped;
  return any_fail;
}
