// Translation with an encoder-decoder: text or token ids in, the best hypotheses out, through
// the model's incremental decoder (model/incremental_decoder.h) and the batched beam search
// (trainer/beam_search.h). Used by `polyhead translate`, by evaluation (BLEU and exact match on
// held-out pairs) and by the samples at the end of training. Every tensor-parallel rank calls
// it alike and gets the same result.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/pair_dataset.h"
#include "io/tokenizer.h"
#include "model/incremental_decoder.h"
#include "model/model.h"
#include "parallel/grid.h"
#include "trainer/beam_search.h"
#include "trainer/bleu.h"

namespace ph {

class Translator {
 public:
  // `model` must be an encoder-decoder; pad, bos and eos are the ids of the config's special
  // tokens. Up to `max_sources` sentences are decoded at once with up to `max_beams` each.
  Translator(Model& model, const Tokenizer& tokenizer, int32_t pad, int32_t bos, int32_t eos,
             int max_sources, int max_beams);

  // The n_best hypotheses of each source (ids without eos). A source longer than
  // model.src_seq_len - 1 ids is cropped to fit (the eos takes the last position); the count of
  // cropped sources is added to *cropped when given.
  std::vector<std::vector<Hypothesis>> translate_ids(
      const std::vector<std::vector<int32_t>>& sources, BeamOptions opt,
      int64_t* cropped = nullptr);
  // The same from text (encoded with the tokenizer); outputs decoded to text.
  std::vector<std::vector<std::string>> translate(
      const std::vector<std::string>& lines, const BeamOptions& opt,
      std::vector<std::vector<double>>* scores = nullptr, int64_t* cropped = nullptr);

  std::string text(const std::vector<int32_t>& ids) const;
  std::vector<int32_t> ids(const std::string& text) const { return tokenizer_.encode(text); }

 private:
  Model& model_;
  const Tokenizer& tokenizer_;
  int32_t pad_, bos_, eos_;
  int S_;
  std::unique_ptr<IncrementalDecoder> decoder_;
};

// Held-out pairs decoded and scored: corpus BLEU (sacrebleu's default 13a) of the decoded text
// against the references' text, and exact match (the decoded ids equal the reference's).
struct DecodeScore {
  BleuScore bleu;
  int64_t exact = 0, total = 0;
  double exact_match() const {
    return total > 0 ? static_cast<double>(exact) / static_cast<double>(total) : 0.0;
  }
};

// Decodes the first `max_pairs` kept pairs of `val` (0: all) in order with `opt`; data-parallel
// rank r decodes groups r, r + dp, ... and the statistics are summed over the ranks.
DecodeScore score_decoding(Translator& translator, const PairDataset& val, const BeamOptions& opt,
                           int64_t max_pairs, int group, const ProcessGrid& grid);

}  // namespace ph
