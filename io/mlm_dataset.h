// BERT's training samples from llm.c token shards: segments of the shards' documents, framed by
// [CLS] and [SEP], padded, and masked (io/mlm_masking.h).
//
// Documents: with an end-of-text id (data.eot_token) the documents of a shard are the runs of
// tokens between its eot tokens (the eot tokens themselves are in no sample); without one, a shard
// is one document. Segments never cross a document.
//
// Chunks: every document of n tokens is cut into chunks of L tokens at offsets 0, L, 2L, ... (the
// last may be shorter), with L = T - 2 for one segment and L = T - 3 for two; chunks shorter than
// a sample needs (1 token, or 2 for two segments) are left out. Chunks are numbered 0 .. N-1,
// shard by shard in file order and document by document: an epoch is N samples.
//
// Sample s (the global sample counter) reads chunk c = perm_e[s mod N] of epoch e = s div N
// (io/epoch_permutation.h, the data order of windows and pairs), or c = s mod N without shuffle.
// For a chunk of m tokens:
//   sentence head none   [CLS] chunk [SEP]                                  types 0
//   nsp, sop             A = its first ceil(m/2) tokens, B = the other floor(m/2):
//                        [CLS] A [SEP] B [SEP]      types 0 for [CLS] A [SEP], 1 for B [SEP]
//                        with w = philox4x32(counter = (s mod 2^32, s div 2^32,
//                        rng::kMlmSegmentsA, 0), key = seed) and label = w0 & 1:
//     sop                label 1: the segments swapped, [CLS] B [SEP] A [SEP] (ALBERT's order
//                        prediction; types by place, 0 then 1)
//     nsp                label 1: B replaced by the B of chunk (c + 1 + r) mod N, r =
//                        scale_bits((w1 << 32) | w2, N - 1): a segment of another chunk, uniform
//                        (HF's next_sentence_label: 0 continuation, 1 random)
// then [PAD] up to T (type 0); length = the real tokens. The masks are MlmMasking::apply(seed, s)
// over the real tokens, so a sample — content, padding, masks, label — is a pure function of
// (files, options, seed, s): the same on every layout, in any split of a batch into fill() calls,
// and after a resume.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/mlm_masking.h"
#include "io/shard.h"

namespace ph {

struct MlmDatasetOptions {
  int seq_len = 0;     // T (model.seq_len)
  int vocab_size = 0;  // model.vocab_size: every shard's ids must be below it
  SentenceHead sentence_head = SentenceHead::kNone;  // none: one segment; nsp, sop: two
  int32_t cls = -1;                                  // the special ids, in [0, vocab_size)
  int32_t sep = -1;
  int32_t pad = -1;
  int32_t eot = -1;  // the documents' separator; -1: a shard is one document
  bool shuffle = true;
  uint64_t seed = 0;  // data order, segment choices and masks
};

// Where fill() writes `count` samples: tokens, types [count, T], lengths [count], positions,
// targets [count, P], sentence_labels [count] (null when the sentence head is none).
struct MlmRows {
  int32_t* tokens = nullptr;
  int32_t* types = nullptr;
  int32_t* lengths = nullptr;
  int32_t* positions = nullptr;
  int32_t* targets = nullptr;
  int32_t* sentence_labels = nullptr;
};

class MlmDataset {
 public:
  // Opens and validates every shard (expand_data_paths, Shard::open and their messages). Throws
  // InputError, besides:
  //   MLM data: seq_len T is too short for [CLS] A [SEP] (at least 3)   (B [SEP]: at least 5)
  //   MLM data: F holds no document of at least K tokens, which a sample needs (one segment: 1,
  //     two: 2); documents are separated by data.eot_token
  //   MLM data: next-sentence prediction needs a second chunk to draw random segments from, but
  //     F holds one chunk
  //   MLM data has N chunks; shuffling supports at most 4294967295 (data.shuffle=false)
  //   MLM data: the special ids ([CLS] C, [SEP] S, [PAD] P) must be in [0, model.vocab_size V)
  // F names the files: 'P', or 'P' and K more.
  MlmDataset(const std::vector<std::string>& patterns, const MlmDatasetOptions& options,
             MlmMasking masking);

  uint64_t num_chunks() const { return chunk_begin_.back(); }  // N: samples per epoch
  int seq_len() const { return o_.seq_len; }
  int predictions() const { return masking_.predictions(); }
  bool has_sentence_labels() const { return o_.sentence_head != SentenceHead::kNone; }
  const std::vector<Shard>& shards() const { return shards_; }

  // The chunk that sample s reads (may recompute the permutation: see fill).
  uint64_t chunk_of(uint64_t sample);
  // Chunk c's tokens (c < N) into out (at most L); returns how many.
  int read_chunk(uint64_t c, int32_t* out) const;

  // Rows [0, count) become samples first .. first + count - 1, laid out as above. Allocates
  // nothing once warm (the permutation is sized once and recomputed in place when the epoch
  // changes). Not thread-safe.
  void fill(uint64_t first, int count, const MlmRows& rows);

 private:
  struct Document {
    uint32_t shard;
    uint64_t begin, length;  // tokens [begin, begin + length) of the shard
  };
  // One sample's unmasked tokens and types into row t[0..T), y[0..T); returns its length and
  // sets *label.
  int assemble(uint64_t sample, uint64_t chunk, int32_t* t, int32_t* y, int32_t* label);
  // The first ceil(m/2) or the last floor(m/2) tokens of chunk c into out; returns how many.
  int read_half(uint64_t c, bool second, int32_t* out);

  MlmDatasetOptions o_;
  MlmMasking masking_;
  int L_;  // chunk length
  std::vector<Shard> shards_;
  std::vector<Document> docs_;         // documents with at least one chunk
  std::vector<uint64_t> chunk_begin_;  // [docs + 1]: first chunk of each document
  std::vector<uint32_t> perm_;         // [N] when shuffling
  std::vector<int32_t> chunk_;         // [L]: one chunk read by read_half
  uint64_t perm_epoch_ = UINT64_MAX;
};

}  // namespace ph
