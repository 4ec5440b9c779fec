#include "trainer/evaluator.h"

#include <algorithm>

namespace ph {

Evaluator::Evaluator(int batch, const Model& model)
    : batch_(batch),
      T_(model.config().seq_len),
      preds_(static_cast<size_t>(batch) * static_cast<size_t>(T_)),
      argmax_(model, batch * T_) {}

EvalResult Evaluator::run(Model& model, SampleSource& val, const AdditionTask* task,
                          int max_batches, const ProcessGrid& grid) {
  EvalResult r;
  r.has_task = task != nullptr;
  val.shape(micro_, batch_);
  const uint64_t windows = val.size();
  uint64_t limit = windows;
  if (max_batches > 0)
    limit = std::min<uint64_t>(windows, static_cast<uint64_t>(max_batches) * batch_);
  const uint64_t batches = (limit + batch_ - 1) / batch_;
  double sum = 0.0;
  const DropoutContext off;  // train = false
  for (uint64_t b = static_cast<uint64_t>(grid.dp_rank); b < batches;
       b += static_cast<uint64_t>(grid.dp)) {
    const uint64_t first = b * batch_;
    val.fill(first, static_cast<int>(std::min<uint64_t>(batch_, limit - first)), micro_);
    int64_t n = 0;
    sum += model.loss(micro_, off, &n);
    r.tokens += n;
    if (task) {
      argmax_.run(model, 0, micro_.B * T_, grid.tp_comm.get(), preds_.data());
      const TaskScore s =
          task->score(micro_.tokens.data(), micro_.targets.data(), preds_.data(), micro_.B, T_);
      r.task_correct += s.correct;
      r.task_total += s.total;
    }
  }
  if (grid.dp > 1) {
    grid.dp_comm->all_reduce(&sum, 1, ReduceOp::Sum);
    int64_t counts[3] = {r.tokens, r.task_correct, r.task_total};
    grid.dp_comm->all_reduce(counts, 3, ReduceOp::Sum);
    r.tokens = counts[0];
    r.task_correct = counts[1];
    r.task_total = counts[2];
  }
  r.loss = r.tokens > 0 ? sum / static_cast<double>(r.tokens) : 0.0;
  return r;
}

}  // namespace ph
