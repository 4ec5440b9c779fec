// Before a run trains: every rank runs the same experiment, the run directory exists and is
// this run's alone, and the checkpoint to resume from (if any) is known and fits the model.
#pragma once
#include <memory>
#include <string>

#include "io/config.h"
#include "parallel/grid.h"

namespace ph {

// InputError on every rank when the ranks were started with different configs (a launcher
// passing different arguments to different ranks would otherwise deadlock or diverge); the
// message names the first key that differs and both values.
void check_same_config(const Config& cfg, Communicator& world);

// The run directory while a run owns it: run.dir exists (rank 0 creates it) and rank 0 holds an
// exclusive lock on run.dir/.polyhead.lock (flock: the kernel releases it when the process ends,
// kill -9 included), which names this host and pid for whoever finds it taken. Destroying it
// releases the lock; a run directory this run created and left empty (the run was refused
// before writing anything) is removed again.
class RunDirectory {
 public:
  // Collective over the grid. InputError, on every rank, when run.dir cannot be created or
  // another run holds it ("run.dir: '...' is in use by another polyhead run (host H, pid P)").
  RunDirectory(const Config& cfg, const ProcessGrid& grid);
  ~RunDirectory();
  RunDirectory(const RunDirectory&) = delete;
  RunDirectory& operator=(const RunDirectory&) = delete;

  // The checkpoint to resume from ("" for none), agreed by every rank (collective):
  // checkpoint.resume auto takes the newest checkpoint of the run directory that verifies — the
  // one `latest` names, or, when that is missing or damaged, the newest step file that verifies
  // (saying so); a path takes that file. A run never overwrites a checkpoint of the directory it
  // did not write: a fresh run in a directory holding checkpoints, a run resumed from a
  // checkpoint older than the directory's newest, and a directory whose checkpoints are all
  // damaged are refused (InputError). The checkpoint's architecture is checked against the
  // config, and settings that changed since are printed.
  std::string resume_point();

  // The checkpoint whose weights start this run (checkpoint.init_from), "" for none, given the
  // resume point found above. The run's own checkpoint takes precedence (an interrupted
  // fine-tuning run continues where it stopped, saying so); init_from beside an explicit
  // checkpoint.resume=PATH is refused. The file must exist, verify its attributes and hold the
  // config's architecture (the differences named key by key). Collective.
  std::string init_point(const std::string& resume_from);

  // Checks, before the first step, that a checkpoint of `bytes` can be written: the checkpoints
  // path is a directory (created if missing) that this process can write, with room for one
  // checkpoint. InputError otherwise. Collective.
  void check_checkpoint_room(uint64_t bytes);

 private:
  const Config& cfg_;
  const ProcessGrid& grid_;
  int lock_fd_ = -1;      // rank 0
  bool created_ = false;  // rank 0 created run.dir
};

}  // namespace ph
