// The best evaluation of a run, which train.early_stopping and checkpoint.keep_best follow
// (README "Early stopping and the best checkpoint"). It travels in every checkpoint (the
// attribute best_eval, format 5) so that a resumed run stops, and replaces best.h5, exactly
// where the uninterrupted run would.
#pragma once
#include <cstdint>
#include <string>

#include "io/config.h"

namespace ph {

// The values one evaluation reports; NaN where the run has no such metric.
struct EvalValues {
  double val_loss;
  double bleu;
  double task_accuracy;
  double mlm_accuracy;
  double of(EvalMetric m) const;
};
EvalValues no_eval_values();

class BestEval {
 public:
  explicit BestEval(EvalMetric metric) : metric_(metric) {}

  // Records the value of the evaluation at `step`; true when it improves on the best (strictly:
  // lower val_loss, higher bleu or task_accuracy; the first finite value always does; NaN never).
  bool update(double value, int64_t step);

  bool has_best() const { return step_ > 0; }
  EvalMetric metric() const { return metric_; }
  double value() const { return value_; }
  int64_t step() const { return step_; }
  // Evaluations since the best one (0 right after an improvement), counting those without one.
  int stale() const { return stale_; }

  // One line for the checkpoint and `polyhead inspect`, round-tripping every double:
  // "metric=val_loss value=0.6931471805599453 step=200 stale=2"; "" before any evaluation.
  std::string text() const;
  // The state stored in checkpoint `path` (text() or ""), for a run that follows `metric`.
  // Another metric's record starts afresh, with a note for the user in *note. A malformed
  // record is an InputError naming the checkpoint (text() never writes one).
  static BestEval from_text(const std::string& text, EvalMetric metric, const std::string& path,
                            std::string* note);

 private:
  EvalMetric metric_;
  double value_ = 0.0;
  int64_t step_ = 0;
  int stale_ = 0;
};

}  // namespace ph
