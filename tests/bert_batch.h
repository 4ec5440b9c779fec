// A micro-batch for the BERT tests: random tokens and two segments (types 0 then 1), padding
// past each sample's length (sample i of the global batch has T - i % 3 real positions; the
// rest holds `pad`, which the model must ignore), P prediction slots of which the last of every
// sample is unused (position 0, target ignored) and the others predict distinct positions in
// [1, length), and a random sentence label per sample (one ignored).
#pragma once
#include <algorithm>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "model/model.h"

namespace ph::test {

inline Batch bert_batch(const ModelConfig& m, int B, int P, unsigned seed, int64_t sample0 = 0,
                        int32_t pad = 0) {
  std::mt19937 rng(seed);
  const auto token = [&] {
    return static_cast<int32_t>(rng() % static_cast<unsigned>(m.vocab_size));
  };
  Batch b;
  b.B = B;
  b.T = m.seq_len;
  b.P = P;
  b.sample0 = sample0;
  for (int i = 0; i < B; ++i) {
    const int64_t g = sample0 + i;
    const int len = b.T - static_cast<int>(g % 3);
    b.lengths.push_back(len);
    for (int t = 0; t < b.T; ++t) {
      b.tokens.push_back(t < len ? token() : pad);
      b.types.push_back(t < len ? (2 * t >= len ? 1 : 0) : (pad != 0 ? 1 : 0));
    }
    std::vector<int32_t> pos(static_cast<size_t>(len - 1));
    std::iota(pos.begin(), pos.end(), 1);
    std::shuffle(pos.begin(), pos.end(), rng);
    for (int k = 0; k < P; ++k) {
      const bool used = k + 1 < P && k < len - 1;
      b.mlm_positions.push_back(used ? pos[static_cast<size_t>(k)] : 0);
      b.targets.push_back(used ? token() : kIgnoreIndex);
    }
    b.sentence_labels.push_back(static_cast<int32_t>(rng() % 2));
  }
  b.sentence_labels[0] = kIgnoreIndex;
  return b;
}

// Samples [first, first + count) of a BERT batch.
inline Batch bert_slice(const Batch& all, int first, int count) {
  Batch b = all;
  b.B = count;
  b.sample0 = all.sample0 + first;
  const auto cut = [&](std::vector<int32_t>& v, int per) {
    const auto begin = v.begin() + static_cast<std::ptrdiff_t>(first) * per;
    v = std::vector<int32_t>(begin, begin + static_cast<std::ptrdiff_t>(count) * per);
  };
  cut(b.tokens, all.T);
  cut(b.types, all.T);
  cut(b.lengths, 1);
  cut(b.mlm_positions, all.P);
  cut(b.targets, all.P);
  cut(b.sentence_labels, 1);
  return b;
}

}  // namespace ph::test
