#include "trainer/cli_setup.h"

#include <mpi.h>
#include <omp.h>

#include <algorithm>
#include <thread>

namespace ph {

void setup_threads(const Config& cfg) {
  int threads = cfg.runtime.threads;
  if (threads <= 0) {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int local = 1;
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    threads = std::max(1, cores / local);
  }
  // OpenMP owns the threads; the kernels call sgemm single-threaded per block.
  omp_set_num_threads(threads);
}

std::vector<std::string> checkpoint_overrides(const std::vector<std::string>& user) {
  std::vector<std::string> o = {"parallel.tp=1", "parallel.zero=0"};
  o.insert(o.end(), user.begin(), user.end());
  return o;
}

}  // namespace ph
