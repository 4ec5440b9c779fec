// Incremental decoding of an encoder-decoder, the interface between a model (model/encdec.h)
// and the search over its outputs (trainer/beam_search.h): the source is encoded once, and each
// step feeds one token per hypothesis and returns the log-probabilities of the next one.
//
// Hypothesis slots: start() takes n sources and `beams` slots per source; slot i = source
// i / beams. The encoder output and every decoder layer's cross-attention keys and values are
// computed once, in start(); decoder self-attention keeps a key/value cache per slot, so a
// step costs one position, never the whole prefix.
//
// Sources whose search is over leave the batch (retain): the later steps then run on the slots
// of the remaining sources only, and their results are the same as if every slot had been kept.
//
// A decoder may keep copies of the model's weights as they are at its first start() (the CPU
// backend packs them for its GEMMs once: Backend::WeightStore): make a new decoder after the
// weights change (a training step, a checkpoint load).
#pragma once
#include <cstdint>

namespace ph {

class IncrementalDecoder {
 public:
  virtual ~IncrementalDecoder() = default;

  // Encodes n sources, source [n*S] (sample j is source[j*S, j*S + lengths[j]), the rest is
  // padding), n <= max_sources(), 1 <= lengths[j] <= S <= the model's source length, and
  // 1 <= beams <= max_beams(). Clears the caches: the next step is position 0.
  virtual void start(const int32_t* source, const int32_t* lengths, int n, int S, int beams) = 0;

  // One position for all n*beams slots: slot i continues the hypothesis held by slot
  // parents[i] before this step (parents[i] in the same source's slots; the caches are
  // reordered so; at position 0 parents is ignored and may be null) and takes token tokens[i]
  // as its input at this position. Writes log-probabilities of the next token, [n*beams, V]
  // with V = vocab_size() (the unpadded vocabulary), row-major on the host, into logprobs.
  // Every tensor-parallel rank returns the same values. At most max_length() steps after a
  // start().
  virtual void step(const int32_t* tokens, const int32_t* parents, float* logprobs) = 0;

  // Keeps sources keep[0, m) of the current ones (strictly increasing indices into them,
  // 1 <= m <= their count) with their slots' hypotheses and caches, and drops the others: the
  // kept sources are then numbered 0 .. m-1 in that order, and so are their slots (slot i is
  // beam i % beams of kept source i / beams), for the parents and tokens of the next step().
  // The log-probabilities of the kept slots are the same as if nothing had been dropped.
  virtual void retain(const int32_t* keep, int m) = 0;

  virtual int vocab_size() const = 0;
  virtual int max_length() const = 0;  // decoder positions (the model's target length T)
  virtual int max_sources() const = 0;
  virtual int max_beams() const = 0;
};

}  // namespace ph
