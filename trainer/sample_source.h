// What micro-batches are filled from: windows of token shards (the GPT), pairs of parallel
// text (the encoder-decoder) or masked segments of token shards (BERT: trainer/mlm_source.h).
// Sample s is a pure function of the data, the seed and s, so every layout and every split of a
// batch into fill() calls sees the same samples.
#pragma once
#include <cstdint>
#include <memory>

#include "io/dataset.h"
#include "io/pair_dataset.h"
#include "model/model.h"

namespace ph {

class SampleSource {
 public:
  virtual ~SampleSource() = default;
  // Samples in one epoch: windows, the pairs kept, or chunks.
  virtual uint64_t size() const = 0;
  // Sizes b's host buffers for `rows` samples (B = rows; T; the source side, if any).
  virtual void shape(Batch& b, int rows) const = 0;
  // Rows [0, count) of b (shaped for at least count rows) become samples first .. first+count-1;
  // b.B = count.
  virtual void fill(uint64_t first, int count, Batch& b) = 0;
  // The pair dataset behind a pair source (null for windows).
  virtual PairDataset* pairs() { return nullptr; }
};

// Windows of T+1 tokens of the shards (io/dataset.h): tokens = window[0..T), targets =
// window[1..T].
std::unique_ptr<SampleSource> window_source(std::unique_ptr<TokenDataset> data);
// Pairs (io/pair_dataset.h): source, source lengths, decoder inputs and targets.
std::unique_ptr<SampleSource> pair_source(std::unique_ptr<PairDataset> data);

}  // namespace ph
