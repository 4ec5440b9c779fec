#include "trainer/run_setup.h"

#include <cstdio>
#include <filesystem>
#include <functional>

#include "io/checkpoint.h"
#include "parallel/agreement.h"
#include "trainer/checkpointing.h"

namespace ph {

namespace {

// Prints the keys whose value differs between the checkpoint's config and this run's (the
// model must match; data, batch or optimizer changes are allowed but should be visible).
void report_config_changes(const std::string& saved_yaml, const Config& cfg) {
  Config saved;
  try {
    saved = parse_config(saved_yaml, {}, "checkpoint config");
  } catch (const InputError&) {
    return;  // the architecture check has read it already; nothing to compare otherwise
  }
  for (const ConfigDifference& d : config_differences(cfg, saved, /*architecture_only=*/false))
    if (!d.key.starts_with("run.") && !d.key.starts_with("checkpoint."))
      std::printf("note: resuming with a changed setting: %s = %s (checkpoint: %s)\n",
                  d.key.c_str(), d.a.c_str(), d.b.c_str());
}

}  // namespace

void check_same_config(const Config& cfg, Communicator& world) {
  const std::string text = config_to_yaml(cfg);
  int64_t h[2] = {static_cast<int64_t>(std::hash<std::string>{}(text) >> 1), 0};
  h[1] = -h[0];
  world.all_reduce(h, 2, ReduceOp::Max);
  if (h[0] != -h[1])
    throw InputError(
        "the ranks were started with different configs (check the arguments the launcher "
        "passes to each rank)");
}

std::string prepare_run(const Config& cfg, const ProcessGrid& grid) {
  namespace fs = std::filesystem;
  Communicator& world = *grid.world_comm;
  const std::string run_dir = cfg.run.dir, ckpt_dir = run_dir + "/checkpoints";
  agree(world, [&] {
    if (grid.rank != 0) return;
    std::error_code ec;
    fs::create_directories(run_dir, ec);
    if (ec) throw InputError("run.dir: cannot create '" + run_dir + "': " + ec.message());
  });
  std::string resume_from;
  agree(world, [&] {
    const std::string existing = latest_checkpoint(ckpt_dir);
    if (cfg.checkpoint.resume == "auto")
      resume_from = existing;
    else if (cfg.checkpoint.resume != "none")
      resume_from = cfg.checkpoint.resume;
    if (!existing.empty() &&
        (resume_from.empty() || fs::weakly_canonical(fs::path(resume_from).parent_path()) !=
                                    fs::weakly_canonical(ckpt_dir)))
      throw InputError("run.dir: '" + run_dir + "' already holds checkpoints of a run (latest " +
                       existing +
                       "); continue it with checkpoint.resume=auto, or choose another run.dir");
  });
  if (!resume_from.empty()) {
    const CheckpointMeta meta = check_checkpoint_matches(resume_from, cfg);
    if (grid.rank == 0) report_config_changes(meta.config_yaml, cfg);
  }
  return resume_from;
}

}  // namespace ph
