#include "trainer/cli_setup.h"

#include <mpi.h>
#include <omp.h>
#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <string>
#include <thread>

namespace ph {

int default_threads(const char* omp_env, int affinity_cores, int machine_cores, int ranks_on_node) {
  if (omp_env && *omp_env) {
    const std::string text(omp_env);
    const std::string first = text.substr(0, text.find(','));
    char* end = nullptr;
    const long n = std::strtol(first.c_str(), &end, 10);
    if (first.empty() || *end != '\0' || n < 1 || n > 4096)
      throw InputError("OMP_NUM_THREADS=" + text +
                       ": not a positive number of threads (with runtime.threads = 0 it sets the "
                       "OpenMP threads per rank; unset it to share the node's cores among its "
                       "ranks)");
    return static_cast<int>(n);
  }
  if (affinity_cores > 0 && affinity_cores < machine_cores) return affinity_cores;
  return std::max(1, machine_cores / std::max(1, ranks_on_node));
}

void setup_threads(const Config& cfg) {
  int threads = cfg.runtime.threads;
  if (threads <= 0) {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    int local = 1;
    MPI_Comm_size(node, &local);
    MPI_Comm_free(&node);
    const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    cpu_set_t set;
    const int allowed = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 0;
    threads = default_threads(std::getenv("OMP_NUM_THREADS"), allowed, cores, local);
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
