#include "trainer/vocab_argmax.h"

#include <algorithm>

namespace ph {

VocabArgmax::VocabArgmax(const Model& model, int max_rows)
    : best_(static_cast<size_t>(max_rows) * 2),
      gathered_(static_cast<size_t>(max_rows) * 2 * static_cast<size_t>(model.tp().size)),
      rows_(static_cast<size_t>(kRowsPerCopy) * static_cast<size_t>(model.local_vocab())) {}

void VocabArgmax::run(const Model& model, int row0, int N, Communicator* tp_host, int32_t* out) {
  const int Vl = model.local_vocab(), v0 = model.vocab_start();
  const int real = std::clamp(model.config().vocab_size - v0, 0, Vl);
  for (int i = 0; i < N; ++i) {
    if (i % kRowsPerCopy == 0)
      model.download_logits(rows_.data(), row0 + i, std::min(kRowsPerCopy, N - i));
    const float* row = rows_.data() + static_cast<size_t>(i % kRowsPerCopy) * Vl;
    const int j = real > 0 ? static_cast<int>(std::max_element(row, row + real) - row) : 0;
    best_[2 * static_cast<size_t>(i)] = real > 0 ? row[j] : -1e30f;
    best_[2 * static_cast<size_t>(i) + 1] = static_cast<float>(v0 + j);  // exact below 2^24
  }
  const int tp = model.tp().size;
  if (tp == 1) {
    for (int i = 0; i < N; ++i)
      out[i] = static_cast<int32_t>(best_[2 * static_cast<size_t>(i) + 1]);
    return;
  }
  tp_host->all_gather(best_.data(), gathered_.data(), static_cast<size_t>(N) * 2);
  for (int i = 0; i < N; ++i) {
    float bv = 0.0f;
    int32_t bi = -1;
    for (int r = 0; r < tp; ++r) {  // shards in vocabulary order: ties keep the lowest id
      const float* e = gathered_.data() + (static_cast<size_t>(r) * N + i) * 2;
      if (bi < 0 || e[0] > bv) {
        bv = e[0];
        bi = static_cast<int32_t>(e[1]);
      }
    }
    out[i] = bi;
  }
}

}  // namespace ph
