// The directory side of the checkpoint store (internal to io/checkpoint*.cpp; README "The
// checkpoint directory", "Atomicity"): the space checks made before a save writes anything,
// the atomic commit of a finished file, the `latest` pointer, and the pruning of old
// checkpoints and stale temporaries. Rank-local POSIX work: the caller decides which rank does
// what. The save's failures are IoErrors (the environment failed, not the input).
// checkpoint_file_name, latest_checkpoint and step_checkpoints (io/checkpoint.h) live here too.
#pragma once
#include <cstdint>
#include <string>

namespace ph::ckpt {

// Throws IoError(ctx + why) when this process may not write a file of `bytes` (ulimit -f).
void check_file_size_limit(uint64_t bytes, const std::string& ctx);

// Creates dir (and its parents) when needed, refuses a `tmp` that exists and is not a regular
// file (a temporary left by a crashed save is overwritten), and checks that the file system
// holding dir has `bytes` free. Throws IoError(ctx + why).
void prepare_directory(const std::string& dir, const std::string& tmp, uint64_t bytes,
                       const std::string& ctx);

// Reserves `bytes` of disk for the existing file at path (without changing its size), so that
// a full disk or quota shows up before any data is written. A file system without fallocate
// gets no reservation. Throws IoError(ctx + why).
void reserve_space(const std::string& path, uint64_t bytes, const std::string& ctx);

// Makes the closed file tmp durable, renames it to path and syncs the directory. Throws
// IoError(ctx + why).
void commit(const std::string& tmp, const std::string& path, const std::string& ctx);

// Replaces dir/latest atomically with one line naming `name`. Throws IoError(ctx + why).
void write_latest(const std::string& dir, const std::string& name, const std::string& ctx);

// Deletes stale step_*.h5.tmp files and, when keep_last > 0, the oldest step_*.h5 (by step
// number) beyond the newest keep_last, always keeping the file named `current`. Files of steps
// after `current`'s are never deleted: they were not written by this run's history (it
// resumed from an older checkpoint, perhaps because a newer one was damaged). Failures only
// print a warning: the new checkpoint is already safe.
void prune(const std::string& dir, int keep_last, const std::string& current);

}  // namespace ph::ckpt
