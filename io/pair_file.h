// Parallel text as token ids: polyhead's pair file (`polyhead prepare --src --tgt` writes it, the
// encoder-decoder reads it). Little-endian throughout:
//
//   offset  bytes            field
//   0       8                magic "PHPAIRS\0"
//   8       4                u32 version = 1
//   12      4                u32 id width W: 2 (uint16 ids) when the vocabulary has at most
//                            65,536 ids, else 4 (uint32)
//   16      8                u64 pair count N
//   24      8                u64 source ids S (all pairs together)
//   32      8                u64 target ids T
//   40      4                u32 vocabulary size V the ids were made for (every id < V)
//   44      20               zero
//   64      W·(S+T)          the ids, pair after pair: pair i's source ids, then its target ids
//   ...     0..7             zero, up to a multiple of 8 bytes: offset I
//   I       8·(N+1)          u64 begin[0..N]: pair i is ids [begin[i], begin[i+1]) of the id
//                            region (counted in ids, not bytes); begin[0] = 0, begin[N] = S+T
//   I+8N+8  4·N              u32 source length of pair i; its target is the rest of its ids
//
// The file is exactly I + 12·N + 8 bytes. Every pair has at least one source and one target id
// (empty sentences are refused when the file is made). Special tokens (pad, bos, eos) are not
// stored: the dataset adds them at batch time (io/pair_dataset.h). The index comes last so that a
// writer can stream the ids without knowing the pair count in advance.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "io/mapped_file.h"
#include "io/shard.h"

namespace ph {

inline constexpr char kPairMagic[8] = {'P', 'H', 'P', 'A', 'I', 'R', 'S', '\0'};
inline constexpr uint32_t kPairVersion = 1;
inline constexpr size_t kPairHeaderBytes = 64;

// A validated, read-only, memory-mapped pair file. Movable, not copyable.
class PairFile {
 public:
  // Opens, maps and validates `path` in full; vocab_size is the vocabulary of the run that reads
  // it (model.vocab_size), which must hold the file's. Throws InputError naming the file:
  //   pair file 'P': cannot open: <strerror>       (also: not a regular file; cannot map: ...)
  //   pair file 'P': file is B bytes, smaller than the 64-byte header
  //   pair file 'P': bad magic; not a polyhead pair file (polyhead prepare --src --tgt makes them)
  //   pair file 'P': unsupported version V (expected 1)
  //   pair file 'P': vocabulary size V must be in [1, 2147483647]
  //   pair file 'P': id width W does not match a vocabulary of V ids (expected E)
  //   pair file 'P' was made for a vocabulary of V ids; the run's has only M (model.vocab_size)
  //   pair file 'P': file is B bytes but the header's counts (N pairs, S source and T target ids
  //     of W bytes) need E bytes
  //   pair file 'P': the first pair starts at id X, expected 0
  //   pair file 'P': the pairs end at id X, but the header counts S+T = Y ids
  //   pair file 'P': pair K spans ids [A, B) with a source of L ids; each side needs at least one
  //   pair file 'P': the source lengths sum to X, but the header counts S source ids
  //   pair file 'P': pair K: source id I is >= the vocabulary size V        (target likewise)
  static PairFile open(const std::string& path, int vocab_size);

  uint64_t size() const { return pairs_; }
  uint64_t source_tokens() const { return source_tokens_; }
  uint64_t target_tokens() const { return target_tokens_; }
  int vocab_size() const { return vocab_size_; }
  TokenWidth width() const { return width_; }
  const std::string& path() const { return path_; }

  // Pair i (< size()): its lengths, and its first n ids of either side into out[0..n)
  // (n <= the side's length).
  uint32_t source_length(uint64_t i) const { return source_lengths_[i]; }
  uint32_t target_length(uint64_t i) const {
    return static_cast<uint32_t>(begin_[i + 1] - begin_[i] - source_lengths_[i]);
  }
  void read_source(uint64_t i, size_t n, int32_t* out) const { read_ids(begin_[i], n, out); }
  void read_target(uint64_t i, size_t n, int32_t* out) const {
    read_ids(begin_[i] + source_lengths_[i], n, out);
  }

 private:
  PairFile(const std::string& path, MappedFile map) : path_(path), map_(std::move(map)) {}
  void read_ids(uint64_t at, size_t n, int32_t* out) const;

  std::string path_;
  MappedFile map_;
  uint64_t pairs_ = 0, source_tokens_ = 0, target_tokens_ = 0;
  int vocab_size_ = 0;
  TokenWidth width_ = TokenWidth::U16;
  const char* ids_ = nullptr;                 // the id region
  const uint64_t* begin_ = nullptr;           // [N+1]
  const uint32_t* source_lengths_ = nullptr;  // [N]
};

// Writes a pair file: ids stream to `path + ".tmp"` as pairs are added; commit() appends the
// index, writes the header, flushes to disk and renames to `path`. Destroying an uncommitted
// writer removes the temporary, so no failure leaves a partial file under the final name.
// Failed writes throw IoError:
//   cannot write pair file 'P.tmp': <strerror>
//   cannot rename 'P.tmp' to 'P': <strerror>
class PairWriter {
 public:
  PairWriter(const std::string& path, int vocab_size);
  PairWriter(const PairWriter&) = delete;
  PairWriter& operator=(const PairWriter&) = delete;
  ~PairWriter();

  // Appends one pair. Each side needs 1 .. 2^32-1 ids, each in [0, vocab_size)
  // (std::invalid_argument otherwise: the caller refuses empty sentences first).
  void add(const int32_t* source, size_t source_n, const int32_t* target, size_t target_n);
  uint64_t size() const { return source_lengths_.size(); }
  uint64_t source_tokens() const { return source_tokens_; }
  uint64_t target_tokens() const { return begin_.back() - source_tokens_; }
  void commit();

 private:
  void write_bytes(const void* data, size_t bytes);
  [[noreturn]] void fail();
  void append_ids(const int32_t* ids, size_t n);

  std::string path_, tmp_;
  int vocab_size_;
  TokenWidth width_;
  std::FILE* file_ = nullptr;
  std::vector<uint64_t> begin_{0};
  std::vector<uint32_t> source_lengths_;
  uint64_t source_tokens_ = 0;
  std::vector<unsigned char> buffer_;  // one pair's ids at the file's width
};

}  // namespace ph
