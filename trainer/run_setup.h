// Before a run trains: every rank runs the same experiment, the run directory exists and is
// this run's, and the checkpoint to resume from (if any) is known and fits the model.
#pragma once
#include <string>

#include "io/config.h"
#include "parallel/grid.h"

namespace ph {

// InputError on every rank when the ranks were started with different configs (a launcher
// passing different arguments to different ranks would otherwise deadlock or diverge).
void check_same_config(const Config& cfg, Communicator& world);

// Creates run.dir (rank 0) and returns the checkpoint to resume from ("" for none), agreed by
// every rank: checkpoint.resume auto takes the newest checkpoint of the run directory, a path
// takes that file. A run directory that holds another run's checkpoints is never mixed with a
// fresh run (InputError). The checkpoint's architecture is checked against the config, and
// settings that changed since are printed.
std::string prepare_run(const Config& cfg, const ProcessGrid& grid);

}  // namespace ph
