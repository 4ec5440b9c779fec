#include "trainer/best_eval.h"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <limits>

#include "parallel/errors.h"

namespace ph {

double EvalValues::of(EvalMetric m) const {
  switch (m) {
    case EvalMetric::kValLoss:
      return val_loss;
    case EvalMetric::kBleu:
      return bleu;
    case EvalMetric::kTaskAccuracy:
      return task_accuracy;
    case EvalMetric::kMlmAccuracy:
      return mlm_accuracy;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

EvalValues no_eval_values() {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  return {nan, nan, nan, nan};
}

bool BestEval::update(double value, int64_t step) {
  const bool lower_is_better = metric_ == EvalMetric::kValLoss;
  const bool better =
      std::isfinite(value) && (!has_best() || (lower_is_better ? value < value_ : value > value_));
  if (!better) {
    ++stale_;
    return false;
  }
  value_ = value;
  step_ = step;
  stale_ = 0;
  return true;
}

std::string BestEval::text() const {
  if (!has_best() && stale_ == 0) return "";
  char buf[160];
  std::snprintf(buf, sizeof buf, "metric=%s value=%.17g step=%" PRId64 " stale=%d",
                name_of(metric_).c_str(), value_, step_, stale_);
  return buf;
}

BestEval BestEval::from_text(const std::string& text, EvalMetric metric, const std::string& path,
                             std::string* note) {
  BestEval b(metric);
  if (text.empty()) return b;
  char name[32] = {0};
  double value = 0.0;
  int64_t step = 0;
  int stale = 0;
  int end = 0;
  const int got = std::sscanf(text.c_str(), "metric=%31s value=%lf step=%" SCNd64 " stale=%d%n",
                              name, &value, &step, &stale, &end);
  EvalMetric stored = metric;
  bool known = false;
  for (size_t i = 0; i < EnumNames<EvalMetric>::names.size(); ++i)
    if (EnumNames<EvalMetric>::names[i] == name) {
      stored = static_cast<EvalMetric>(i);
      known = true;
    }
  if (got != 4 || static_cast<size_t>(end) != text.size() || !known || step < 0 || stale < 0)
    throw InputError("checkpoint " + path + ": its best_eval attribute is malformed: '" + text +
                     "'");
  if (stored != metric) {
    *note = "checkpoint " + path + " followed the best " + name + "; this run follows " +
            name_of(metric) + " (train.early_stopping_metric), from its next evaluation on";
    return b;
  }
  b.value_ = value;
  b.step_ = step;
  b.stale_ = stale;
  return b;
}

}  // namespace ph
