// GoogleTest main shared by every test executable. It initialises MPI (HDF5 and the
// communicators need it even on one rank), runs the tests, and reduces the result over
// ranks so that a failure on any rank fails the whole test; only rank 0 prints the summary.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>

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
  MPI_Finalize();
  return any_fail;
}
