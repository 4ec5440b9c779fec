#include "model/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace ph {

namespace {

size_t sz(int64_t v) {
  return static_cast<size_t>(v);
}

}  // namespace

SelfKvCache::SelfKvCache(Backend& be, int layers, int max_rows, int T, size_t kv_width) : be_(be) {
  const size_t layer = sz(max_rows) * sz(T) * kv_width;
  kv_ = DeviceBuffer<float>(be, 2 * sz(layers) * layer);
  rows_ = DeviceBuffer<int32_t>(be, sz(max_rows) * sz(T));
  host_rows_.resize(sz(max_rows) * sz(T));
  for (int l = 0; l < layers; ++l) {
    LayerCache c;
    c.self[0] = kv_.data() + 2 * sz(l) * layer;
    c.self[1] = c.self[0] + layer;
    layers_.push_back(c);
  }
}

const int32_t* SelfKvCache::gather(const int32_t* parents, int n, int pos, int group,
                                   const int32_t* prev_slot, int prev_n) {
  if (prev_slot == nullptr) prev_n = n;
  for (int i = 0; i < n; ++i) {
    const int p = pos == 0 || parents == nullptr ? i : parents[i];
    if (p < 0 || p >= n || p / group != i / group)
      throw std::logic_error("incremental decoding: parent " + std::to_string(p) +
                             " of hypothesis " + std::to_string(i) + " is not one of its group's " +
                             std::to_string(group));
    const int q = prev_slot == nullptr ? p : prev_slot[p];  // the parent's rows in the old cache
    int32_t* row = host_rows_.data() + sz(i) * sz(pos + 1);
    for (int j = 0; j < pos; ++j) row[j] = q * pos + j;
    row[pos] = prev_n * pos + i;  // the new row, appended after the old ones
  }
  be_.upload(rows_.data(), host_rows_.data(), sz(n) * sz(pos + 1) * sizeof(int32_t));
  return rows_.data();
}

VocabLogSoftmax::VocabLogSoftmax(const Model& model, int max_rows) : m_(model) {
  const size_t block = sz(max_rows) * sz(model.local_vocab()), tp = sz(model.tp().size);
  if (tp > 1) gathered_ = DeviceBuffer<float>(model.backend(), tp * block);
  host_.resize(tp * block);
}

void VocabLogSoftmax::operator()(int rows, float* logprobs) {
  const size_t n = sz(rows), Vl = sz(m_.local_vocab());
  const size_t V = sz(m_.config().vocab_size), tp = sz(m_.tp().size);
  const size_t block = n * Vl;  // one rank's logits
  Backend& be = m_.backend();
  if (tp > 1) {
    m_.tp().comm->all_gather(m_.logits(), gathered_.data(), block);
    be.download(host_.data(), gathered_.data(), tp * block * sizeof(float));
  } else {
    be.download(host_.data(), m_.logits(), block * sizeof(float));
  }
  for (size_t i = 0; i < n; ++i) {
    float* out = logprobs + i * V;
    for (size_t v = 0; v < V; ++v) out[v] = host_[(v / Vl) * block + i * Vl + v % Vl];
    const float mx = *std::max_element(out, out + V);
    double sum = 0.0;
    for (size_t v = 0; v < V; ++v) sum += std::exp(out[v] - mx);
    const float norm = mx + static_cast<float>(std::log(sum));
    for (size_t v = 0; v < V; ++v) out[v] -= norm;
  }
}

}  // namespace ph
