// Evaluation: mean token loss over the first windows of a validation set (always the same
// windows, in order), and for the synthetic task the exact-match accuracy of its answers.
// Data-parallel ranks share the batches; the result is the same on every layout.
#pragma once
#include <cstdint>
#include <vector>

#include "model/gpt.h"
#include "parallel/grid.h"
#include "trainer/data_source.h"

namespace ph {

struct EvalResult {
  double loss = 0.0;  // mean loss per counted target token
  int64_t tokens = 0;
  bool has_task = false;
  int64_t task_correct = 0;
  int64_t task_total = 0;
  double task_accuracy() const {
    return task_total > 0 ? static_cast<double>(task_correct) / static_cast<double>(task_total)
                          : 0.0;
  }
};

class Evaluator {
 public:
  // Buffers for one micro-batch of `batch` sequences of the model's width, allocated once.
  Evaluator(int batch, const Gpt& model);
  // Evaluates `max_batches` micro-batches (0: the whole set) of val with dropout off; batch b
  // goes to data-parallel rank b mod dp.
  EvalResult run(Gpt& model, TokenDataset& val, const AdditionTask* task, int max_batches,
                 const ProcessGrid& grid);

 private:
  // preds_ [N] = argmax over the real vocabulary of each row of the (sharded) logits, which
  // are downloaded kRowsPerCopy rows at a time; tp_host gathers the shards' maxima.
  void argmax(const Gpt& model, int N, Communicator* tp_host);

  static constexpr int kRowsPerCopy = 64;
  int batch_, T_;
  std::vector<int32_t> inputs_, targets_, preds_;
  std::vector<float> best_, gathered_;  // (value, index) per row, local and of every tp rank
  std::vector<float> rows_;             // [kRowsPerCopy, local vocabulary] host copy of logits
};

}  // namespace ph
