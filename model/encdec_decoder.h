// Incremental decoding of an EncDec (model/incremental_decoder.h): start() runs the encoder
// once and every decoder layer's cross-attention keys and values once; step() embeds one token
// per hypothesis at the next position, runs each decoder layer on it against its self-attention
// cache (rebuilt in the order of the parents, for beam search: SelfAttention::step), and returns
// the full-vocabulary log-probabilities on every tensor-parallel rank (the vocab-parallel logits
// are all-gathered).
//
// Memory, allocated once at construction: per decoder layer two self-attention caches
// [max_sources * max_beams, T, 2d/tp] (model/kv_cache.h) and the memory's keys and values
// [max_sources * S, 2d/tp], and the gathered logits. The rows of a step run in the model's own
// activation arena. Made by EncDec::incremental_decoder().
//
// retain() moves the kept sources' memory keys and values down in place (their lengths too) and
// records where each kept slot was; the next step's cache gather then reads the kept
// hypotheses' rows from where they were, so dropping sources costs no pass over the caches.
#pragma once
#include <cstdint>
#include <vector>

#include "model/encdec.h"
#include "model/kv_cache.h"

namespace ph {

class EncDecDecoder final : public IncrementalDecoder {
 public:
  EncDecDecoder(EncDec& model, int max_sources, int max_beams,
                CrossFolding folding = CrossFolding::kAuto);

  void start(const int32_t* source, const int32_t* lengths, int n, int S, int beams) override;
  void step(const int32_t* tokens, const int32_t* parents, float* logprobs) override;
  // Moves the kept sources' cross-attention keys and values and lengths down in place; the
  // self-attention caches are compacted by the next step's gather (DecodeStep::prev_n).
  void retain(const int32_t* keep, int m) override;

  int vocab_size() const override { return m_.config().vocab_size; }
  int max_length() const override { return T_; }
  int max_sources() const override { return max_sources_; }
  int max_beams() const override { return max_beams_; }

 private:
  EncDec& m_;
  int max_sources_, max_beams_, T_;
  CrossFolding folding_;
  size_t kv_width_;  // floats per cached row: k | v of this rank's heads
  int n_ = 0, beams_ = 0, pos_ = 0;
  int prev_n_ = 0;  // slots of the previous step (rows per position of the self-attention cache)
  Memory mem_;
  // Copies of the weights in the backend's GEMM layout (Backend::WeightStore), made at their
  // first use by start() or step() and read by every later one.
  std::unique_ptr<Backend::WeightStore> weights_;
  SelfKvCache self_;
  VocabLogSoftmax log_softmax_;
  DeviceBuffer<float> cross_kv_;
  // Each layer's folded memory (model/attention.h) when start() folded (folded_): in
  // folded_memory_ (grown to the largest start), layer l's at folded_layers_[l], for the
  // folded_sources_ sources of the start; a kept source reads its own fold, wherever retain()
  // moved its slot (host_folded_source_, uploaded to folded_source_).
  bool folded_ = false;
  DeviceBuffer<float> folded_memory_;
  std::vector<float*> folded_layers_;
  int folded_sources_ = 0;
  DeviceBuffer<int32_t> folded_source_;
  std::vector<int32_t> host_folded_source_;
  DeviceBuffer<int32_t> source_, lengths_, tokens_;
  std::vector<float*> cross_;
  std::vector<int32_t> host_source_, host_lengths_;
  std::vector<int32_t> prev_slot_;     // slot -> its number in the previous step
  std::vector<int32_t> first_tokens_;  // position 0: one token per source
};

}  // namespace ph
