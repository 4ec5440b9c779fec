#include "trainer/evaluator.h"

#include <algorithm>

namespace ph {

Evaluator::Evaluator(int batch, int T, int padded_vocab, int vocab)
    : batch_(batch),
      T_(T),
      Vp_(padded_vocab),
      V_(vocab),
      inputs_(static_cast<size_t>(batch) * T),
      targets_(static_cast<size_t>(batch) * T),
      preds_(static_cast<size_t>(batch) * T) {}

EvalResult Evaluator::run(Gpt& model, TokenDataset& val, const AdditionTask* task,
                          int max_batches) {
  EvalResult r;
  r.has_task = task != nullptr;
  const uint64_t windows = val.num_windows();
  uint64_t limit = windows;
  if (max_batches > 0)
    limit = std::min<uint64_t>(windows, static_cast<uint64_t>(max_batches) * batch_);
  double sum = 0.0;
  DropoutContext off;  // train = false
  for (uint64_t first = 0; first < limit; first += static_cast<uint64_t>(batch_)) {
    const int B = static_cast<int>(std::min<uint64_t>(batch_, limit - first));
    val.fill(first, B, inputs_.data(), targets_.data());
    int64_t n = 0;
    sum += model.loss(inputs_.data(), targets_.data(), B, T_, off, &n);
    r.tokens += n;
    if (task) {
      const float* logits = model.logits();
      for (int64_t i = 0; i < static_cast<int64_t>(B) * T_; ++i) {
        const float* row = logits + i * Vp_;
        preds_[static_cast<size_t>(i)] =
            static_cast<int32_t>(std::max_element(row, row + V_) - row);
      }
      const TaskScore s = task->score(inputs_.data(), targets_.data(), preds_.data(), B, T_);
      r.task_correct += s.correct;
      r.task_total += s.total;
    }
  }
  r.loss = r.tokens > 0 ? sum / static_cast<double>(r.tokens) : 0.0;
  return r;
}

}  // namespace ph
