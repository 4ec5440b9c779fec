// Autoregressive sampling from a model: temperature, top-k, and a seeded counter-based
// generator (same seed, same text). The context is the last seq_len tokens; the model's key/value
// cache (model/gpt_decoder.h) makes each new token cost one position. Under tensor parallelism
// every rank of the group calls it and draws the same tokens.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"

namespace ph {

struct SampleOptions {
  int max_tokens = 32;
  float temperature = 1.0f;  // 0: greedy (argmax)
  int top_k = 0;             // 0: whole vocabulary
  uint64_t seed = 0;
  int32_t stop_token = -1;  // generation ends after emitting this token (-1: never)
};

// Returns the generated tokens (without the prompt). The prompt must be non-empty; the model a
// GPT.
// tp_host: the tensor-parallel group on host buffers (may be null when model.tp().size == 1).
std::vector<int32_t> sample_tokens(Model& model, Communicator* tp_host,
                                   const std::vector<int32_t>& prompt, const SampleOptions& opt);

}  // namespace ph
