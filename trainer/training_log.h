// What a run reports as it trains: a log line every log.interval steps (step, loss, learning
// rate, gradient norm, tokens/s, elapsed time, ETA) on standard output, and the same record as
// one JSON object per line in <run.dir>/metrics.jsonl (rank 0 only). The loss of a record is
// the mean over the steps applied since the previous record; evaluation time does not count
// against throughput.
//
// Every write of metrics.jsonl is checked: a record is appended whole or not at all (a short
// write is cut back off), and a failure (a full disk) is an IoError on every rank at once.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

#include "io/config.h"
#include "parallel/communicator.h"
#include "trainer/train_step.h"

namespace ph {

class TrainingLog {
 public:
  // Starts metrics.jsonl on rank 0 of `world`: a fresh run starts it empty; a run resumed at step
  // `first_step` keeps the records up to that step and drops later ones, and a last line cut
  // short by a kill (with a notice). Writes through a temporary, atomically. Collective; throws
  // InputError on every rank when the run directory cannot be written.
  TrainingLog(const Config& cfg, Communicator& world, int64_t first_step, bool resumed);
  ~TrainingLog();
  TrainingLog(const TrainingLog&) = delete;
  TrainingLog& operator=(const TrainingLog&) = delete;

  // Accounts for one step (tokens trained; the loss of applied steps only).
  void add(const StepResult& r, int64_t tokens);
  // Prints the line of `step` (`last`: its result).
  void print(int64_t step, const StepResult& last);
  // Then, on rank 0, writes the record of the line printed last, with `extra` JSON fields
  // (", \"val_loss\": ..." of an evaluation done since), and starts the next interval: the
  // time spent between print and record (evaluation) does not count against throughput.
  // Collective: a failed write is an IoError on every rank.
  void record(uint64_t consumed, const std::string& extra);
  int64_t skipped_steps() const { return skipped_; }

  // A JSON number, or null for NaN/Inf (which JSON cannot represent).
  static std::string json_number(double v, const char* fmt);

 private:
  using Clock = std::chrono::steady_clock;
  const Config& cfg_;
  Communicator& world_;
  bool root_;
  int64_t first_step_;
  std::string path_;
  int fd_ = -1;         // metrics.jsonl, appending (rank 0)
  uint64_t bytes_ = 0;  // its length: whole records only
  int64_t last_recorded_ = 0;
  Clock::time_point t_start_, t_last_;
  int64_t tokens_ = 0;   // since the last record
  double loss_ = 0.0;    // sum of applied steps' losses since the last record
  int applied_ = 0;      // applied steps since the last record
  int64_t skipped_ = 0;  // skipped steps of this run
  struct Line {          // what print() showed, for record()
    int64_t step;
    double mean_loss, lr, grad_norm, tokens_per_s, elapsed;
  } line_{};
};

// The lines of a metrics.jsonl text whose "step" is at most `step`; lines that cannot be read
// (a record cut short when the process was killed while writing it) are dropped and counted.
struct KeptMetrics {
  std::string text;
  int unreadable = 0;
};
KeptMetrics metrics_up_to(const std::string& text, int64_t step);

// Writes `text` to `path` through path.tmp and a rename. InputError "what: cannot write ..."
// on failure.
void write_text_atomically(const std::string& path, const std::string& text,
                           const std::string& what = "run.dir");

}  // namespace ph
