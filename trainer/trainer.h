// The training loop: micro-batches with gradient accumulation into one global batch per
// step, loss scaled by the global count of target tokens, NaN/Inf guard, clipping, AdamW
// with the LR schedule, periodic logging (stdout + metrics.jsonl), evaluation and
// checkpoints, and a clean stop on SIGINT/SIGTERM (checkpoint saved, exit 0).
#pragma once
#include <cstdint>
#include <string>

#include "io/config.h"

namespace ph {

struct TrainSummary {
  int64_t steps_done = 0;    // optimizer steps at exit
  bool interrupted = false;  // stopped by a signal
  double final_val_loss = 0.0;
  double task_accuracy = -1.0;  // -1 when there is no task metric
  std::string last_checkpoint;
};

// Runs training for a validated config (the run directory, data and checkpoints it names).
TrainSummary train(const Config& cfg);

// Installs SIGINT/SIGTERM handlers that ask the loop to stop after the current step.
void install_stop_handlers();

}  // namespace ph
