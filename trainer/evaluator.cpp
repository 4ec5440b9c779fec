#include "trainer/evaluator.h"

#include <algorithm>

namespace ph {

Evaluator::Evaluator(int batch, const Gpt& model)
    : batch_(batch),
      T_(model.config().seq_len),
      inputs_(static_cast<size_t>(batch) * T_),
      targets_(static_cast<size_t>(batch) * T_),
      preds_(static_cast<size_t>(batch) * T_),
      best_(static_cast<size_t>(batch) * T_ * 2),
      gathered_(static_cast<size_t>(batch) * T_ * 2 * model.tp()),
      rows_(static_cast<size_t>(kRowsPerCopy) * static_cast<size_t>(model.local_vocab())) {}

void Evaluator::argmax(const Gpt& model, int N, Communicator* tp_host) {
  const int Vl = model.local_vocab(), v0 = model.vocab_start();
  const int real = std::clamp(model.config().vocab_size - v0, 0, Vl);
  for (int i = 0; i < N; ++i) {
    if (i % kRowsPerCopy == 0)
      model.download_logits(rows_.data(), i, std::min(kRowsPerCopy, N - i));
    const float* row = rows_.data() + static_cast<size_t>(i % kRowsPerCopy) * Vl;
    const int j = real > 0 ? static_cast<int>(std::max_element(row, row + real) - row) : 0;
    best_[2 * static_cast<size_t>(i)] = real > 0 ? row[j] : -1e30f;
    best_[2 * static_cast<size_t>(i) + 1] = static_cast<float>(v0 + j);  // exact below 2^24
  }
  if (model.tp() == 1) {
    for (int i = 0; i < N; ++i)
      preds_[static_cast<size_t>(i)] = static_cast<int32_t>(best_[2 * static_cast<size_t>(i) + 1]);
    return;
  }
  tp_host->all_gather(best_.data(), gathered_.data(), static_cast<size_t>(N) * 2);
  for (int i = 0; i < N; ++i) {
    float bv = 0.0f;
    int32_t bi = -1;
    for (int r = 0; r < model.tp(); ++r) {  // shards in vocabulary order: ties keep the lowest id
      const float* e = gathered_.data() + (static_cast<size_t>(r) * N + i) * 2;
      if (bi < 0 || e[0] > bv) {
        bv = e[0];
        bi = static_cast<int32_t>(e[1]);
      }
    }
    preds_[static_cast<size_t>(i)] = bi;
  }
}

EvalResult Evaluator::run(Gpt& model, TokenDataset& val, const AdditionTask* task, int max_batches,
                          const ProcessGrid& grid) {
  EvalResult r;
  r.has_task = task != nullptr;
  const uint64_t windows = val.num_windows();
  uint64_t limit = windows;
  if (max_batches > 0)
    limit = std::min<uint64_t>(windows, static_cast<uint64_t>(max_batches) * batch_);
  const uint64_t batches = (limit + batch_ - 1) / batch_;
  double sum = 0.0;
  DropoutContext off;  // train = false
  for (uint64_t b = static_cast<uint64_t>(grid.dp_rank); b < batches;
       b += static_cast<uint64_t>(grid.dp)) {
    const uint64_t first = b * batch_;
    const int B = static_cast<int>(std::min<uint64_t>(batch_, limit - first));
    val.fill(first, B, inputs_.data(), targets_.data());
    int64_t n = 0;
    sum += model.loss(inputs_.data(), targets_.data(), B, T_, off, &n);
    r.tokens += n;
    if (task) {
      argmax(model, B * T_, grid.tp_comm.get());
      const TaskScore s = task->score(inputs_.data(), targets_.data(), preds_.data(), B, T_);
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
