// What tests that compare two models or two runs share: a deterministic micro-batch (tokens
// spread over the vocabulary, every `ignore_every`-th target ignored, a training dropout
// context) and the config of a short training run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "model/gpt.h"

namespace ph::test {

struct ModelBatch {
  int B = 0, T = 0;
  std::vector<int32_t> inputs, targets;
  DropoutContext dropout;
};

inline ModelBatch model_batch(int B, int T, int vocab, uint64_t seed, int ignore_every = 5) {
  ModelBatch m;
  m.B = B;
  m.T = T;
  const size_t n = static_cast<size_t>(B) * static_cast<size_t>(T);
  const size_t V = static_cast<size_t>(vocab);
  m.inputs.resize(n);
  m.targets.resize(n);
  for (size_t i = 0; i < n; ++i) {
    m.inputs[i] = static_cast<int32_t>((i * 37 + seed) % V);
    m.targets[i] = i % static_cast<size_t>(ignore_every) == 0
                       ? kIgnoreIndex
                       : static_cast<int32_t>((i * 13 + 2 * seed + 1) % V);
  }
  m.dropout.train = true;
  m.dropout.seed = seed;
  m.dropout.step = 2;
  return m;
}

// Zeroes the gradients and runs one forward + backward of the batch; returns the loss sum.
inline double step(Gpt& model, const ModelBatch& m, float dloss, int64_t* counted) {
  model.zero_grads();
  return model.forward_backward(m.inputs.data(), m.targets.data(), m.B, m.T, dloss, m.dropout,
                                counted);
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
