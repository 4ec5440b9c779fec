#include "parallel/runtime.h"

#include <mpi.h>

#include <cstdio>
#include <cstdlib>

namespace ph {

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int provided = 0;
  MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &world_);
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void fatal_exit(const std::string& message, int code, bool all_ranks_agree) {
  int rank = 0, world = 1, initialized = 0, finalized = 0;
  MPI_Initialized(&initialized);
  MPI_Finalized(&finalized);
  const bool mpi_up = initialized && !finalized;
  if (mpi_up) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
  }
  if (!all_ranks_agree || rank == 0) {
    if (world > 1 && !all_ranks_agree)
      std::fprintf(stderr, "polyhead: error (rank %d): %s\n", rank, message.c_str());
    else
      std::fprintf(stderr, "polyhead: error: %s\n", message.c_str());
    std::fflush(stderr);
  }
  if (mpi_up && world > 1) {
    if (all_ranks_agree) {
      MPI_Finalize();
      std::exit(code);
    }
    MPI_Abort(MPI_COMM_WORLD, code);
  }
  if (mpi_up) MPI_Finalize();
  std::exit(code);
}

}  // namespace ph
