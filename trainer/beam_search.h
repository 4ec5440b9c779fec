// Batched beam search over an IncrementalDecoder (model/incremental_decoder.h): n sources at
// once, `beam` hypotheses each. Every hypothesis starts from the bos token and ends with eos.
//
// One step: every live hypothesis (raw score s = the sum of its tokens' log-probabilities) is
// extended by every token except bos and pad (unless either is the eos id); the candidates of a
// source are ranked by raw score, ties to the lower token id, then to the lower parent rank.
// Among the first `beam` ranks, a candidate that ends with eos is finished; the first `beam`
// candidates that do not end with eos (from any rank) are the live hypotheses of the next step
// (fewer when fewer exist). With beam 1 this is greedy decoding: the argmax at every step,
// until it is eos.
//
// Length penalty (Marian's --normalize A): a finished hypothesis scores raw / length^A, where
// length counts its output tokens including eos and excluding bos (A = 0: the raw sum).
// Finished hypotheses are ranked by that score (ties: the one that finished first).
//
// Maximum length (fairseq's --max-len-a/--max-len-b): a source of src tokens (its entry of
// `lengths`) gets at most L = min(floor(a * src + b), decoder.max_length() - 1) output tokens
// before eos; at step L only eos is allowed, so every hypothesis has at most L + 1 tokens with
// eos, and the decoder takes at most L + 1 steps.
//
// The search for a source ends at the first of: the maximum length, no live hypothesis left,
// or no live hypothesis can still score above the n_best-th finished one; with beam 1 the first
// eos ends it (greedy decoding). The bound is exact: log-probabilities are <= 0, so a live
// hypothesis of raw score s that may end with m tokens, l0 <= m <= L + 1, scores at most
// s / max(l0^A, (L + 1)^A). (fairseq and Marian also stop once `beam` hypotheses have finished;
// that rule loses the best hypothesis when a confident model's beam fills with poor prefixes
// whose eos ranks high — seen on the translation task, where it cost beam 4 five points of exact
// match against greedy — so it is not used.) A source whose search is over leaves the decoder's
// batch (IncrementalDecoder::retain): the later steps run on the others' slots only.
#pragma once
#include <cstdint>
#include <vector>

#include "model/incremental_decoder.h"

namespace ph {

struct BeamOptions {
  int beam = 4;                          // hypotheses per source, 1 <= beam <= decoder.max_beams()
  double length_penalty = 0.0;           // A in raw / length^A (finite; 0: the raw sum)
  double max_len_a = 0.0;                // >= 0
  int max_len_b = 200;                   // >= 0
  int n_best = 1;                        // hypotheses returned per source, 1 <= n_best <= beam
  int32_t bos = -1, eos = -1, pad = -1;  // token ids in [0, vocab_size)
};

struct Hypothesis {
  std::vector<int32_t> tokens;  // the output, without bos and eos
  double score = 0.0;           // logprob / length()^A: what the ranking uses
  double logprob = 0.0;         // sum of the log-probabilities of tokens and eos
  int length() const { return static_cast<int>(tokens.size()) + 1; }  // eos included
};

// The n_best best hypotheses of each source, best first (fewer when fewer finished; at least
// one). source [n*S] and lengths [n] as IncrementalDecoder::start takes them
// (1 <= lengths[j] <= S); more than decoder.max_sources() sources are searched in consecutive
// groups. The decoder's log-probabilities must be <= 0 (NaN counts as -inf). Every
// tensor-parallel rank calls it with the same arguments and gets the same result. Throws
// InputError on bad options or lengths.
std::vector<std::vector<Hypothesis>> beam_search(IncrementalDecoder& decoder, const int32_t* source,
                                                 const int32_t* lengths, int n, int S,
                                                 const BeamOptions& opt);

// The maximum number of output tokens before eos for a source of src tokens (see above).
int max_output_length(const BeamOptions& opt, int src, int decoder_max_length);

}  // namespace ph
