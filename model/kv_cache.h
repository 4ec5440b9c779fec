// What every incremental decoder over a stack of causal layers shares (model/encdec_decoder.h,
// model/gpt_decoder.h): the self-attention caches of the stack, two buffers per layer that each
// step rebuilds in the order of the hypotheses' parents (SelfAttention::step), and the
// full-vocabulary log-probabilities of a step from the vocab-parallel logits, the same on every
// tensor-parallel rank.
#pragma once
#include <cstdint>
#include <vector>

#include "model/model.h"
#include "model/transformer_layer.h"

namespace ph {

class SelfKvCache {
 public:
  // Caches of `layers` layers for up to max_rows hypotheses of up to T positions, rows of
  // kv_width floats (k | v of this rank's heads); allocated once, here.
  SelfKvCache(Backend& be, int layers, int max_rows, int T, size_t kv_width);

  // The rows of the caches rebuilt at position pos (DecodeStep::gather), uploaded: hypothesis i
  // continues parents[i] (ignored at pos 0; null: i itself), which must lie in i's group of
  // `group` consecutive hypotheses (std::logic_error otherwise). After hypotheses left the batch,
  // prev_slot [n] maps a hypothesis to its number in the previous step, which had prev_n of them
  // (DecodeStep::prev_n); null: the same numbering, prev_n = n. Returns the device rows.
  const int32_t* gather(const int32_t* parents, int n, int pos, int group,
                        const int32_t* prev_slot = nullptr, int prev_n = 0);

  // Each layer's caches (LayerCache::self); set LayerCache::cross where the layers have one.
  std::vector<LayerCache>& layers() { return layers_; }

 private:
  Backend& be_;
  DeviceBuffer<float> kv_;
  DeviceBuffer<int32_t> rows_;
  std::vector<int32_t> host_rows_;
  std::vector<LayerCache> layers_;
};

// The log-probabilities of the model's last logits, rows [0, rows): logprobs [rows, V] on the host
// (V = the unpadded vocabulary), from every tensor-parallel rank's columns (all-gathered).
class VocabLogSoftmax {
 public:
  VocabLogSoftmax(const Model& model, int max_rows);
  void operator()(int rows, float* logprobs);

 private:
  const Model& m_;
  DeviceBuffer<float> gathered_;  // [tp, max_rows, Vl], tensor parallelism only
  std::vector<float> host_;
};

}  // namespace ph
