// BERT's samples (model.type bert): the masked-LM view of token shards (io/mlm_dataset.h) as
// micro-batches. A sample is a pure function of the data, the seed and its global index, so every
// layout and every split of a batch into fill() calls sees the same samples and masks.
#pragma once
#include <memory>

#include "io/mlm_dataset.h"
#include "trainer/sample_source.h"

namespace ph {

// tokens, types [B*T]; lengths [B]; P = the dataset's prediction slots; mlm_positions, targets
// [B*P]; sentence_labels [B] with a sentence head, else empty.
std::unique_ptr<SampleSource> mlm_source(std::unique_ptr<MlmDataset> data);

}  // namespace ph
