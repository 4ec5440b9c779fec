// Evaluation: mean token loss over the first windows of a validation set (always the same
// windows, in order), and for the synthetic task the exact-match accuracy of its answers.
// Data-parallel ranks share the batches; the result is the same on every layout.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "parallel/grid.h"
#include "trainer/data_source.h"
#include "trainer/sample_source.h"
#include "trainer/vocab_argmax.h"

namespace ph {

struct EvalResult {
  double loss = 0.0;  // mean loss per counted target token (plain cross-entropy)
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
  // Buffers for one micro-batch of `batch` sequences of the model's length, allocated once.
  Evaluator(int batch, const Model& model);
  // Evaluates `max_batches` micro-batches (0: the whole set) of val with dropout off; batch b
  // goes to data-parallel rank b mod dp.
  EvalResult run(Model& model, SampleSource& val, const AdditionTask* task, int max_batches,
                 const ProcessGrid& grid);

 private:
  int batch_, T_;
  Batch micro_;
  std::vector<int32_t> preds_;
  VocabArgmax argmax_;
};

}  // namespace ph
