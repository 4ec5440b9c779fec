// Set-up shared by the commands that run a model: threads per rank, and the overrides every
// checkpoint's embedded config gets.
#pragma once
#include <string>
#include <vector>

#include "io/config.h"

namespace ph {

// OpenMP threads per rank: runtime.threads, or when it is 0 default_threads() of this process.
void setup_threads(const Config& cfg);

// The threads per rank when runtime.threads is 0:
// - OMP_NUM_THREADS (`omp_env`, may be null) when set: the user's or the launcher's choice, as
//   every OpenMP program honours it (its first number; "4,2" sets nested levels). Anything
//   but a positive number is an InputError naming it;
// - else the cores this process may run on: all of them when mpirun bound it to fewer than
//   the machine's (`affinity_cores` < `machine_cores`), otherwise the machine's cores shared
//   among the node's ranks.
int default_threads(const char* omp_env, int affinity_cores, int machine_cores, int ranks_on_node);

// A checkpoint's embedded config describes the layout that wrote it; any layout reads it, so
// eval, sample and translate start from one process per model replica (tp=1) unless the
// command line (`user`) says otherwise.
std::vector<std::string> checkpoint_overrides(const std::vector<std::string>& user);

}  // namespace ph
