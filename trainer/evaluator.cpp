#include "trainer/evaluator.h"

#include <algorithm>

namespace ph {

Evaluator::Evaluator(int batch, const Model& model)
    : batch_(batch),
      T_(model.config().seq_len),
      preds_(static_cast<size_t>(batch) * static_cast<size_t>(T_)),
      argmax_(model, batch * T_) {}

// The masked-LM predictions of the last forward (one logits row per slot) against the original
// tokens, and the sentence head's loss and hits.
void Evaluator::score_mlm(Model& model, const ProcessGrid& grid, EvalResult& r) {
  const int rows = model.loss_rows(micro_);
  argmax_.run(model, 0, rows, grid.tp_comm.get(), preds_.data());
  for (int i = 0; i < rows; ++i) {
    const int32_t want = micro_.targets[static_cast<size_t>(i)];
    if (want != kIgnoreIndex && preds_[static_cast<size_t>(i)] == want) ++r.mlm_correct;
  }
  const SentenceStats s = model.sentence_stats();
  r.sentence_loss_sum += s.loss_sum;
  r.sentence_correct += s.correct;
  r.sentences += s.counted;
}

EvalResult Evaluator::run(Model& model, SampleSource& val, const AdditionTask* task,
                          int max_batches, const ProcessGrid& grid) {
  EvalResult r;
  r.has_task = task != nullptr;
  r.has_mlm = model.config().type == ModelType::kBert;
  r.has_sentence = r.has_mlm && model.config().sentence_head != SentenceHead::kNone;
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
    if (r.has_mlm) score_mlm(model, grid, r);
    if (task) {
      argmax_.run(model, 0, micro_.B * T_, grid.tp_comm.get(), preds_.data());
      const TaskScore s =
          task->score(micro_.tokens.data(), micro_.targets.data(), preds_.data(), micro_.B, T_);
      r.task_correct += s.correct;
      r.task_total += s.total;
    }
  }
  if (grid.dp > 1) {
    double sums[2] = {sum, r.sentence_loss_sum};
    grid.dp_comm->all_reduce(sums, 2, ReduceOp::Sum);
    sum = sums[0];
    r.sentence_loss_sum = sums[1];
    int64_t counts[6] = {r.tokens,      r.task_correct,     r.task_total,
                         r.mlm_correct, r.sentence_correct, r.sentences};
    grid.dp_comm->all_reduce(counts, 6, ReduceOp::Sum);
    r.tokens = counts[0];
    r.task_correct = counts[1];
    r.task_total = counts[2];
    r.mlm_correct = counts[3];
    r.sentence_correct = counts[4];
    r.sentences = counts[5];
  }
  r.loss = r.tokens > 0 ? sum / static_cast<double>(r.tokens) : 0.0;
  return r;
}

}  // namespace ph
