// What tests that build models or compare two runs share: the model setup for a layout, a
// deterministic micro-batch (tokens spread over the vocabulary, every `ignore_every`-th target
// ignored, a training dropout context), slices of a batch, and the config of a short run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt.h"
#include "parallel/grid.h"

namespace ph::test {

// How tests build a model: micro-batches of up to max_batch sequences, on this rank's place in
// `grid` (its tensor-parallel group on the grid's MPI communicator, host buffers of the CPU
// backend), or alone.
inline ModelSetup setup(int max_batch) {
  ModelSetup s;
  s.max_batch = max_batch;
  return s;
}
inline ModelSetup setup(int max_batch, const ProcessGrid& grid) {
  ModelSetup s = setup(max_batch);
  s.tp = TpGroup{grid.tp_rank, grid.tp, grid.tp_comm.get()};
  return s;
}

// Samples [first, first + count) of a batch, as the micro-batch of those samples.
inline Batch slice(const Batch& all, int first, int count) {
  Batch b;
  b.B = count;
  b.T = all.T;
  b.sample0 = all.sample0 + first;
  const auto begin = static_cast<std::ptrdiff_t>(first) * all.T;
  const auto end = begin + static_cast<std::ptrdiff_t>(count) * all.T;
  b.tokens.assign(all.tokens.begin() + begin, all.tokens.begin() + end);
  b.targets.assign(all.targets.begin() + begin, all.targets.begin() + end);
  return b;
}

struct ModelBatch {
  Batch batch;
  DropoutContext dropout;
};

inline ModelBatch model_batch(int B, int T, int vocab, uint64_t seed, int ignore_every = 5) {
  ModelBatch m;
  m.batch.B = B;
  m.batch.T = T;
  const size_t n = static_cast<size_t>(B) * static_cast<size_t>(T);
  const size_t V = static_cast<size_t>(vocab);
  m.batch.tokens.resize(n);
  m.batch.targets.resize(n);
  for (size_t i = 0; i < n; ++i) {
    m.batch.tokens[i] = static_cast<int32_t>((i * 37 + seed) % V);
    m.batch.targets[i] = i % static_cast<size_t>(ignore_every) == 0
                             ? kIgnoreIndex
                             : static_cast<int32_t>((i * 13 + 2 * seed + 1) % V);
  }
  m.dropout.train = true;
  m.dropout.seed = seed;
  m.dropout.step = 2;
  return m;
}

// Zeroes the gradients and runs one forward + backward of the batch; returns the loss sum.
inline double step(Model& model, const ModelBatch& m, float dloss, int64_t* counted) {
  model.zero_grads();
  return model.forward_backward(m.batch, dloss, m.dropout, counted);
}

// A short run of the synthetic task (2-digit addition) on `model` with vocabulary 256 and 20
// tokens per window: no samples, no periodic checkpoints unless a test asks.
inline Config task_run(const ModelConfig& model, const std::string& dir) {
  Config c;
  c.model = model;
  c.model.vocab_size = 256;
  c.model.seq_len = 20;
  c.train.micro_batch = 4;
  c.data.task_digits = 2;
  c.data.task_train_problems = 2000;
  c.data.task_val_problems = 50;
  c.checkpoint.interval = 0;
  c.log.interval = 100;
  c.sample.count = 0;
  c.run.dir = dir;
  return c;
}

}  // namespace ph::test
