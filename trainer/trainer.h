// The training loop: each step (trainer/train_step.h), the NaN policy, logging and metrics
// (trainer/training_log.h), evaluation and checkpoints at their intervals, and a clean stop on
// SIGINT/SIGTERM (checkpoint saved, exit 0; trainer/signals.h).
#pragma once
#include <cstdint>
#include <functional>
#include <string>

#include "io/config.h"
#include "trainer/train_step.h"

namespace ph {

struct TrainSummary {
  int64_t steps_done = 0;    // optimizer steps at exit
  bool interrupted = false;  // stopped by a signal
  double final_val_loss = 0.0;
  double task_accuracy = -1.0;      // -1 when there is no task metric
  double mlm_accuracy = -1.0;       // BERT; -1 otherwise
  double sentence_accuracy = -1.0;  // BERT with a sentence head; -1 otherwise
  std::string last_checkpoint;
  bool stopped_early = false;   // by train.early_stopping (now, or in the run resumed)
  double best_value = 0.0;      // of train.early_stopping_metric, when best_step > 0
  int64_t best_step = 0;        // of the best evaluation of this run; 0: none yet
  std::string best_checkpoint;  // best.h5 when checkpoint.keep_best saved one in this run
};

// Called on every rank after each step (1-based step number) with its result.
using StepObserver = std::function<void(int64_t step, const StepResult& result)>;

// Runs training for a validated config (the run directory, data and checkpoints it names).
TrainSummary train(const Config& cfg, const StepObserver& observe = {});

}  // namespace ph
