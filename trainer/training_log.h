// What a run reports as it trains: a log line every log.interval steps (step, loss, learning
// rate, gradient norm, tokens/s, MFU, peak host memory, device memory on a GPU, elapsed time,
// ETA) on standard output, and the same record as one JSON object per line in
// <run.dir>/metrics.jsonl (rank 0 only), every number in its shortest round-trip form. The loss
// of a record is the mean over the steps applied since the previous record; evaluation time does
// not count against throughput. With log.tensorboard set, every numeric field of a record but
// its step also goes to a TensorBoard event file (io/tfevents.h) as a scalar of the same name.
//
// MFU = flops_per_token x token positions per second / the job's peak FLOP/s, where the
// positions are the B x T of every step (padding included: the model computes it; tokens_per_s
// counts only the counted targets) and the peak is the sum of the ranks' DevicePeaks.
//
// Every write of metrics.jsonl and of the event file is checked: a record is appended whole or
// not at all (a short write is cut back off), and a failure (a full disk) is an IoError on every
// rank at once.
#pragma once
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/record_file.h"
#include "io/tfevents.h"
#include "kernels/backend.h"
#include "parallel/communicator.h"
#include "trainer/train_step.h"

namespace ph {

// One numeric field of a metrics record.
struct Metric {
  enum class Kind { kDouble, kFloat, kInteger };  // kFloat: a float's shortest digits
  std::string name;
  double value;
  Kind kind = Kind::kDouble;
};
using Metrics = std::vector<Metric>;

// What MFU is computed from: the model FLOPs of each step (StepResult::flops) over the
// interval's time and the peak.
struct Throughput {
  double flops_per_token = 0.0;  // model FLOPs per token position (trainer/model_flops.h), logged
  double peak_flops = 0.0;       // the job's: the sum over its ranks; 0: unknown
};

class TrainingLog {
 public:
  // Starts metrics.jsonl on rank 0 of `world`: a fresh run starts it empty; a run resumed at step
  // `first_step` keeps the records up to that step and drops later ones, and a last line cut
  // short by a kill (with a notice). Writes through a temporary, atomically. With
  // log.tensorboard, starts a new event file there whose SessionLog START at first_step + 1
  // makes TensorBoard drop what earlier files of the directory hold from that step on (as
  // metrics.jsonl drops it). Collective; throws InputError on every rank when the run directory
  // or the TensorBoard directory cannot be written. `backend` reports device memory.
  TrainingLog(const Config& cfg, Communicator& world, const Backend& backend,
              const Throughput& throughput, int64_t first_step, bool resumed);
  ~TrainingLog();
  TrainingLog(const TrainingLog&) = delete;
  TrainingLog& operator=(const TrainingLog&) = delete;

  // Accounts for one step (tokens trained; the loss of applied steps only).
  void add(const StepResult& r, int64_t tokens);
  // Prints the line of `step` (`last`: its result). Collective (the memory figures are the
  // largest of any rank).
  void print(int64_t step, const StepResult& last);
  // Then, on rank 0, writes the record of the line printed last, with `extra` fields (those of
  // an evaluation done since), and starts the next interval: the time spent between print and
  // record (evaluation) does not count against throughput. Collective: a failed write is an
  // IoError on every rank.
  void record(uint64_t consumed, const Metrics& extra);
  int64_t skipped_steps() const { return skipped_; }

  // A JSON number in the shortest form that reads back to the same double (or float), or null
  // for NaN/Inf (which JSON cannot represent).
  static std::string json_number(double v);
  static std::string json_number(float v);
  // printf's `fmt` of v, or null for NaN/Inf: for the lines printed.
  static std::string json_number(double v, const char* fmt);

 private:
  using Clock = std::chrono::steady_clock;
  const Config& cfg_;
  Communicator& world_;
  const Backend& backend_;
  Throughput throughput_;
  bool root_;
  int64_t first_step_;
  RecordFile metrics_;                       // metrics.jsonl (rank 0)
  std::unique_ptr<EventFileWriter> events_;  // log.tensorboard (rank 0)
  int64_t last_recorded_ = 0;
  Clock::time_point t_start_, t_last_;
  int64_t tokens_ = 0;   // since the last record
  double flops_ = 0.0;   // model FLOPs of the steps since the last record
  int64_t steps_ = 0;    // since the last record
  double loss_ = 0.0;    // sum of applied steps' losses since the last record
  int applied_ = 0;      // applied steps since the last record
  int64_t skipped_ = 0;  // skipped steps of this run
  int64_t step_ = 0;     // of the line printed last
  Metrics line_;         // its fields, for record()
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
