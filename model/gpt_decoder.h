// Incremental decoding of a GPT (sampling, batches of prompts, beam search): n sequences; each
// step feeds one token per sequence at the next position and returns the log-probabilities of
// the following token over the full vocabulary, the same on every tensor-parallel rank. Each
// layer keeps the keys and values of every sequence's earlier positions (model/kv_cache.h,
// rebuilt in the order of the parents when hypotheses are reordered), so a step costs one
// position, never the prefix; a prompt is fed one token per step.
//
// Memory, allocated once at construction: per layer two caches [max_sequences, T, 2d/tp]
// and the gathered logits; the rows of a step run in the model's activation arena, so
// max_sequences <= max_batch * seq_len of the model's setup. Using a decoder overwrites the
// model's last-forward state; it must not outlive the model. Made by Gpt::incremental_decoder().
#pragma once
#include <cstdint>

#include "model/gpt.h"
#include "model/kv_cache.h"

namespace ph {

class GptDecoder {
 public:
  GptDecoder(Gpt& model, int max_sequences);

  // Clears the caches for n <= max_sequences() sequences: the next step is position 0.
  void start(int n);
  // One position for the n sequences: sequence i continues the one held by parents[i] before
  // this step (null: itself; ignored at position 0) and takes tokens[i]; writes logprobs [n, V]
  // (host, V = vocab_size()). At most max_length() steps after a start().
  void step(const int32_t* tokens, const int32_t* parents, float* logprobs);

  int vocab_size() const { return m_.config().vocab_size; }
  int max_length() const { return m_.config().seq_len; }
  int max_sequences() const { return max_; }
  int position() const { return pos_; }  // of the next step

 private:
  Gpt& m_;
  int max_;
  int n_ = 0, pos_ = 0;
  SelfKvCache self_;
  VocabLogSoftmax log_softmax_;
  DeviceBuffer<int32_t> tokens_;
};

}  // namespace ph
