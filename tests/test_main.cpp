// GoogleTest main shared by every test executable. It initialises MPI (HDF5 and the
// communicators need it even on one rank), runs the tests, and reduces the result over
// ranks so that a failure on any rank fails the whole test; only rank 0 prints the summary.
// A program whose every test was skipped (GTEST_SKIP: e.g. the gpu-labelled tests on a
// machine without a GPU) exits with kAllSkipped, which ctest reports as "Skipped".
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

constexpr int kAllSkipped = 77;  // SKIP_RETURN_CODE in tests/CMakeLists.txt

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  ::testing::InitGoogleTest(&argc, argv);
  // Other ranks print their failures only (with the rank, so they can be told apart).
  if (rank != 0) GTEST_FLAG_SET(brief, true);
  int local_fail = RUN_ALL_TESTS() != 0 ? 1 : 0;
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
