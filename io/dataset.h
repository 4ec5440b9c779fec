// Training samples from llm.c token shards.
//
// A window is T+1 consecutive tokens starting at k·T inside one shard (k = 0, 1, ...;
// windows never cross a shard boundary): a shard of n tokens holds (n - 1) / T windows.
// Windows are numbered globally, shard by shard in file order. Its first T tokens are a
// sample's inputs, its last T the targets (inputs shifted by one).
//
// Samples are addressed by a global sample counter s = 0, 1, 2, ... (the data position that
// checkpoints save): epoch e = s / num_windows, position p = s % num_windows. Without
// shuffle sample s reads window p; with shuffle it reads window perm_e[p], where perm_e is a
// Fisher–Yates permutation of [0, num_windows) whose draws come from
// philox_bits(seed, rng::kShuffleA, e mod 2^32, counter) (kernels/common/rng_streams.h),
// exactly uniform (Lemire's bounded integers with rejection; io/epoch_permutation.h, which
// paired data shares). So a sample's content is a pure function of (files, T, shuffle, seed, s):
// the same for any number of data-parallel ranks (each takes its slice of a step's global batch)
// and for a resumed run.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "io/shard.h"

namespace ph {

// Expands file paths and glob(3) patterns, in the order given; the matches of one pattern
// are sorted. Throws InputError:
//   no data files given
//   data path 'P' matches no file
//   data path 'P': glob failed
std::vector<std::string> expand_data_paths(const std::vector<std::string>& patterns);

class TokenDataset {
 public:
  // Opens and validates every shard (see Shard::open for those messages). Throws
  // InputError, besides:
  //   sequence length must be >= 1, got T
  //   data shard 'P' has N tokens, too short for one sequence of T+1 = M tokens
  //   data has N windows; shuffling supports at most 4294967295 (use longer sequences or
  //     data.shuffle=false)
  TokenDataset(const std::vector<std::string>& patterns, int vocab_size, int seq_len, bool shuffle,
               uint64_t seed);

  uint64_t num_windows() const { return window_begin_.back(); }
  uint64_t num_tokens() const { return num_tokens_; }
  int seq_len() const { return T_; }
  bool shuffled() const { return shuffle_; }
  const std::vector<Shard>& shards() const { return shards_; }

  // The T+1 tokens of global window w (w < num_windows()) into out[0..T+1).
  void read_window(uint64_t w, int32_t* out) const;

  // The window that sample s reads (may recompute the permutation: see fill).
  uint64_t window_of(uint64_t sample);

  // inputs, targets: [count, T]. Row i is sample first_sample + i: inputs = window[0..T),
  // targets = window[1..T]. Allocates nothing: the permutation buffer is sized once in the
  // constructor and recomputed in place only when the epoch changes, so consecutive calls
  // within one epoch cost only the copies (a call may span an epoch boundary).
  // Not thread-safe: one instance is used by one thread at a time.
  void fill(uint64_t first_sample, int count, int32_t* inputs, int32_t* targets);

 private:
  void build_permutation(uint64_t epoch);

  int T_;
  bool shuffle_;
  uint64_t seed_;
  std::vector<Shard> shards_;
  std::vector<uint64_t> window_begin_;  // [shards + 1]: first global window of each shard
  uint64_t num_tokens_ = 0;
  std::vector<uint32_t> perm_;        // [num_windows] when shuffling
  std::vector<int32_t> window_;       // [T+1]: one window read by fill
  uint64_t perm_epoch_ = UINT64_MAX;  // epoch perm_ holds; UINT64_MAX: none yet
};

}  // namespace ph
