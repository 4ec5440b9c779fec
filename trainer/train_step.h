// One optimizer step, as every layout computes it: the global batch of the step split into
// micro-batches (gradient accumulation) and data-parallel slices, forward and backward of each
// accumulating into the gradient arena, the data-parallel sum (overlapped with the last
// backward where it can be), the global gradient norm, and — unless the loss or the norm is
// not finite — clipping and the AdamW update with the scheduled learning rate.
//
// Sample s of the global batch of step k is global sample k·G + s on every layout: micro-batch
// a of data-parallel rank r holds samples [(a·dp + r)·mb, +mb). The loss is the mean over every
// counted target of the global batch.
#pragma once
#include <cstdint>
#include <vector>

#include "io/config.h"
#include "model/model.h"
#include "parallel/grad_sync.h"
#include "parallel/grid.h"
#include "trainer/optimizer.h"
#include "trainer/sample_source.h"

namespace ph {

struct StepResult {
  double loss = 0.0;       // mean over the counted targets of the global batch (+ BERT: the mean
                           // sentence loss over its labelled sequences)
  double grad_norm = 0.0;  // before clipping
  float lr = 0.0f;
  int64_t tokens = 0;    // counted targets of the global batch (padding is not counted; BERT: its
                         // real input tokens)
  bool applied = false;  // false: the loss or the norm was not finite, nothing was updated
  double flops = 0.0;    // model FLOPs of the step's global batch (trainer/model_flops.h; the
                         // encoder-decoder's over the positions it computes, MFU's numerator)
};

class TrainStep {
 public:
  // Every reference must outlive the step. Host buffers for the micro-batches are allocated
  // here, once.
  TrainStep(const Config& cfg, const ProcessGrid& grid, Model& model, AdamW& opt, GradSync& sync);

  // Runs step `step` (0-based) on the samples that follow `consumed` (the global data position),
  // with `applied` AdamW updates done before it (bias correction).
  StepResult run(SampleSource& data, int64_t step, uint64_t consumed, int64_t applied);

  int global_batch() const { return global_batch_; }

 private:
  const Config& cfg_;
  const ProcessGrid& grid_;
  Model& model_;
  AdamW& opt_;
  GradSync& sync_;
  int micro_batch_, accum_, global_batch_;
  std::vector<Batch> micro_;  // the accum_ micro-batches of this rank
  GradNorm norm_;
  double flops_per_token_;  // gpt and bert: model FLOPs per position
};

}  // namespace ph
