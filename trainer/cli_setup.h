// Set-up shared by the commands that run a model: threads per rank, and the overrides every
// checkpoint's embedded config gets.
#pragma once
#include <string>
#include <vector>

#include "io/config.h"

namespace ph {

// OpenMP threads per rank: runtime.threads, or the node's cores shared among its ranks.
void setup_threads(const Config& cfg);

// A checkpoint's embedded config describes the layout that wrote it; any layout reads it, so
// eval, sample and translate start from one process per model replica (tp=1) unless the
// command line (`user`) says otherwise.
std::vector<std::string> checkpoint_overrides(const std::vector<std::string>& user);

}  // namespace ph
