// Training samples of the encoder-decoder from pair files (io/pair_file.h).
//
// The pairs of the files, file after file in the order given, are numbered 0, 1, 2, ...; those
// that do not fit the configured lengths are dropped when the dataset opens (or, with crop,
// cropped to fit), and the N pairs kept are renumbered 0 .. N-1 in the same order. A source fits
// if its ids plus the eos fit in S positions; a target if its ids plus the bos (decoder input)
// or the eos (targets) fit in T. Cropping keeps the first S-1 source and T-1 target ids (the eos
// is still added).
//
// Sample s (the global sample counter that checkpoints save) is kept pair perm_e[s mod N] of
// epoch e = s div N, with perm_e the data-order permutation of io/epoch_permutation.h (without
// shuffle: pair s mod N). What a sample holds, its padding included, is thus a pure function of
// (files, S, T, specials, crop, shuffle, seed, s): the same for any layout and any split of a
// batch into fill() calls.
//
// A sample, for a pair of source ids x[0..m) and target ids y[0..n):
//   source          x[0] .. x[m-1] eos pad ... pad          [S]    source_length = m + 1
//   tokens          bos y[0] .. y[n-1] pad ... pad          [T]    (the decoder's inputs)
//   targets         y[0] .. y[n-1] eos ignore ... ignore    [T]    (ignore: ignore_index)
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/pair_file.h"

namespace ph {

struct PairDatasetOptions {
  int source_len = 0;  // S (model.src_seq_len), >= 2
  int target_len = 0;  // T (model.seq_len), >= 2
  int vocab_size = 0;  // model.vocab_size: every file's vocabulary must fit in it
  int32_t pad = -1;    // the special tokens' ids, each in [0, vocab_size)
  int32_t bos = -1;
  int32_t eos = -1;
  int32_t ignore_index = -1;  // targets past the eos (the loss's kIgnoreIndex)
  bool crop = false;          // crop pairs that do not fit instead of dropping them
  bool shuffle = true;
  uint64_t seed = 0;
};

class PairDataset {
 public:
  // Opens and validates every file (expand_data_paths, then PairFile::open and their messages).
  // Throws InputError, besides:
  //   paired data: source length (model.src_seq_len) must be >= 2, got S
  //   paired data: target length (model.seq_len) must be >= 2, got T
  //   paired data: the files hold no pairs (F)
  //   paired data: all N pairs of F are too long for model.src_seq_len S and model.seq_len T
  //     (a source needs its ids + eos <= S, a target its ids + bos <= T); raise them or set
  //     data.crop=true
  //   paired data has N pairs; shuffling supports at most 4294967295 (data.shuffle=false)
  // F names the files: 'P', or 'P' and K more. The special ids out of range are a caller's bug
  // (std::invalid_argument).
  PairDataset(const std::vector<std::string>& patterns, const PairDatasetOptions& options);

  uint64_t num_pairs() const { return num_pairs_; }  // N: the pairs samples are drawn from
  uint64_t total_pairs() const { return pair_begin_.back(); }  // in the files
  uint64_t dropped() const { return dropped_; }                // too long, without crop
  uint64_t cropped() const { return cropped_; }                // too long, with crop
  int source_len() const { return options_.source_len; }
  int target_len() const { return options_.target_len; }
  const std::vector<PairFile>& files() const { return files_; }
  // "P: N pairs (D dropped as longer than S=.. / T=..)"-style line for the run's log.
  std::string summary() const;

  // The kept pair (0 .. N-1) that sample s reads (may recompute the permutation: see fill).
  uint64_t pair_of(uint64_t sample);

  // source: [count, S], source_lengths: [count], tokens and targets: [count, T]; row i is
  // sample first_sample + i, laid out as above. Allocates nothing (the permutation is sized once
  // and recomputed in place when the epoch changes). Not thread-safe.
  void fill(uint64_t first_sample, int count, int32_t* source, int32_t* source_lengths,
            int32_t* tokens, int32_t* targets);

  // Kept pair k's ids as stored: not cropped, no special tokens (references for BLEU).
  void read_pair(uint64_t k, std::vector<int32_t>& source, std::vector<int32_t>& target) const;

 private:
  // The file and index within it of kept pair k.
  std::pair<const PairFile*, uint64_t> locate(uint64_t k) const;
  std::string files_named() const;

  PairDatasetOptions options_;
  std::vector<PairFile> files_;
  std::vector<uint64_t> pair_begin_;  // [files + 1]: first global pair of each file
  std::vector<uint64_t> kept_;        // global pair of each kept pair (only when some are dropped)
  uint64_t num_pairs_ = 0;
  uint64_t dropped_ = 0;
  uint64_t cropped_ = 0;
  std::vector<uint32_t> perm_;        // [N] when shuffling
  uint64_t perm_epoch_ = UINT64_MAX;  // epoch perm_ holds; UINT64_MAX: none yet
};

}  // namespace ph
