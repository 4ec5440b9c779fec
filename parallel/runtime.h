// Process-level runtime: MPI start-up and shutdown, this process's rank, printing once,
// and bringing the whole job down when one rank fails (never a hang).
#pragma once
#include <string>

#include "parallel/errors.h"

namespace ph {

class MpiRuntime {
 public:
  // Initialises MPI (thread level FUNNELED: only the main thread communicates).
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;

  int rank() const { return rank_; }
  int world() const { return world_; }
  bool is_root() const { return rank_ == 0; }

 private:
  int rank_ = 0;
  int world_ = 1;
};

// Prints a fatal message (once, prefixed "polyhead: error: ") and ends every rank of the job
// with exit code `code`. When every rank hits the same bad input, only rank 0 prints.
[[noreturn]] void fatal_exit(const std::string& message, int code, bool all_ranks_agree);

}  // namespace ph
