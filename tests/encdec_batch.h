// A micro-batch for the encoder-decoder tests: random source and target tokens with padding on
// both sides. Sample i (of the global batch) has S - i % 3 real source positions (the rest
// holds `pad`, a value the model must ignore) and T - i % 2 real target positions (the rest
// holds `pad` with ignored targets); one more target is ignored.
#pragma once
#include <cstdint>
#include <random>

#include "model/model.h"

namespace ph::test {

inline Batch encdec_batch(const ModelConfig& m, int B, unsigned seed, int64_t sample0 = 0,
                          int32_t pad = 0) {
  std::mt19937 rng(seed);
  const auto token = [&] {
    return static_cast<int32_t>(rng() % static_cast<unsigned>(m.vocab_size));
  };
  Batch b;
  b.B = B;
  b.T = m.seq_len;
  b.S = m.source_len();
  b.sample0 = sample0;
  for (int i = 0; i < B; ++i) {
    const int64_t g = sample0 + i;
    const int len = b.S - static_cast<int>(g % 3 < b.S ? g % 3 : 0);
    b.source_lengths.push_back(len);
    for (int s = 0; s < b.S; ++s) b.source.push_back(s < len ? token() : pad);
    const int tlen = b.T - static_cast<int>(g % 2 < b.T ? g % 2 : 0);
    for (int t = 0; t < b.T; ++t) {
      b.tokens.push_back(t < tlen ? token() : pad);
      b.targets.push_back(t < tlen ? token() : kIgnoreIndex);
    }
  }
  b.targets[1] = kIgnoreIndex;
  return b;
}

// Samples [first, first + count) of a batch with a source side.
inline Batch encdec_slice(const Batch& all, int first, int count) {
  Batch b;
  b.B = count;
  b.T = all.T;
  b.S = all.S;
  b.sample0 = all.sample0 + first;
  const auto t0 = static_cast<std::ptrdiff_t>(first) * all.T;
  const auto t1 = t0 + static_cast<std::ptrdiff_t>(count) * all.T;
  b.tokens.assign(all.tokens.begin() + t0, all.tokens.begin() + t1);
  b.targets.assign(all.targets.begin() + t0, all.targets.begin() + t1);
  const auto s0 = static_cast<std::ptrdiff_t>(first) * all.S;
  const auto s1 = s0 + static_cast<std::ptrdiff_t>(count) * all.S;
  b.source.assign(all.source.begin() + s0, all.source.begin() + s1);
  b.source_lengths.assign(all.source_lengths.begin() + first,
                          all.source_lengths.begin() + first + count);
  return b;
}

}  // namespace ph::test
