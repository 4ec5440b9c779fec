// Evaluation: mean token loss over the first samples of a validation set (always the same
// samples, in order), for the synthetic task the exact-match accuracy of its answers, and for
// BERT the masked-LM accuracy and the sentence head's loss and accuracy.
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
  double loss = 0.0;   // mean loss per counted target token (plain cross-entropy; BERT: mlm_loss)
  int64_t tokens = 0;  // counted targets (BERT: predictions)
  bool has_task = false;
  int64_t task_correct = 0;
  int64_t task_total = 0;
  double task_accuracy() const {
    return task_total > 0 ? static_cast<double>(task_correct) / static_cast<double>(task_total)
                          : 0.0;
  }
  // BERT: predictions whose most likely token is the original one (ties to the lowest id).
  bool has_mlm = false;
  int64_t mlm_correct = 0;
  double mlm_accuracy() const {
    return tokens > 0 ? static_cast<double>(mlm_correct) / static_cast<double>(tokens) : 0.0;
  }
  // BERT with a sentence head: its loss summed over the counted sequences, and the right ones.
  bool has_sentence = false;
  double sentence_loss_sum = 0.0;
  int64_t sentence_correct = 0;
  int64_t sentences = 0;
  double sentence_loss() const {
    return sentences > 0 ? sentence_loss_sum / static_cast<double>(sentences) : 0.0;
  }
  double sentence_accuracy() const {
    return sentences > 0 ? static_cast<double>(sentence_correct) / static_cast<double>(sentences)
                         : 0.0;
  }
  // The validation loss: the token loss, plus BERT's mean sentence loss (as its training loss).
  double total_loss() const { return loss + (has_sentence ? sentence_loss() : 0.0); }
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
  void score_mlm(Model& model, const ProcessGrid& grid, EvalResult& r);

  int batch_, T_;
  Batch micro_;
  std::vector<int32_t> preds_;
  VocabArgmax argmax_;
};

}  // namespace ph
