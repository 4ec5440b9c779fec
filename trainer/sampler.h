// Autoregressive sampling from a model: temperature, top-k, and a seeded counter-based
// generator (same seed, same text). The context is the last seq_len tokens; the model's key/value
// cache (model/gpt_decoder.h) makes each new token cost one position. Prompts can be sampled
// together as a batch, each with its own random stream: a prompt gives the same tokens in any
// batch as alone (up to the last-bit rounding of matrix products over more rows, which changes a
// token only at a near-tie). Under tensor parallelism every rank of the group calls it and draws
// the same tokens.
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

// Returns the generated tokens (without the prompt): sample_batch({prompt}, opt, 0)[0]. The
// prompt must be non-empty; the model a GPT.
// tp_host: the tensor-parallel group on host buffers (may be null when model.tp().size == 1).
std::vector<int32_t> sample_tokens(Model& model, Communicator* tp_host,
                                   const std::vector<int32_t>& prompt, const SampleOptions& opt);

// The generated tokens of each prompt (non-empty, of any lengths), sampled together: one
// incremental decoder of prompts.size() sequences (at most max_batch * seq_len of the model's
// setup), each prompt fed one token per step at its own positions while the others already
// sample; windows past seq_len are recomputed in forward passes of at most max_batch rows.
// Prompt j draws its token i from the stream (opt.seed, first_stream + j, i), so its tokens do
// not depend on the other prompts of the batch: sampling it alone with first_stream + j gives the
// same ones (first_stream + prompts.size() <= 2^32). Each prompt stops on its own, after
// opt.max_tokens tokens or opt.stop_token.
std::vector<std::vector<int32_t>> sample_batch(Model& model, Communicator* tp_host,
                                               const std::vector<std::vector<int32_t>>& prompts,
                                               const SampleOptions& opt, uint64_t first_stream);

}  // namespace ph
