// Token shards in the llm.c format, so that shards made by llm.c and nanoGPT-style scripts
// work as they are:
//
//   bytes [0, 1024)          256 little-endian int32: [0] = 20240520 (magic), [1] = 1
//                            (version), [2] = token count N, the rest zero
//   bytes [1024, 1024 + 2N)  N little-endian uint16 token ids
//
// A file is exactly 1024 + 2·N bytes. Shards are memory-mapped read-only and validated in
// full (header, size, every token id < vocab) when opened, before any training starts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

namespace ph {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr size_t kShardHeaderInts = 256;
inline constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
inline constexpr uint64_t kShardMaxTokens = 2147483647;  // the header's count is an int32

// A validated, read-only, memory-mapped shard. Movable, not copyable; unmapped on
// destruction. tokens() stays valid (and at the same address) while the Shard lives,
// including across moves.
class Shard {
 public:
  // Opens, maps and validates `path`; every token id must be < vocab_size (vocab_size >=
  // 65536 accepts every uint16). Throws InputError naming the file on any problem:
  //   data shard 'P': cannot open: <strerror>
  //   data shard 'P': not a regular file
  //   data shard 'P': file is S bytes, smaller than the 1024-byte header
  //   data shard 'P': bad magic number M (expected 20240520); not an llm.c token shard
  //   data shard 'P': unsupported version V (expected 1)
  //   data shard 'P': header token count C is negative
  //   data shard 'P': file is S bytes but the header's token count C needs
  //     1024 + 2*C = E bytes
  //   data shard 'P': token id I at position K is >= vocab_size V
  //   data shard 'P': cannot map: <strerror>
  static Shard open(const std::string& path, int vocab_size);

  Shard(Shard&& other) noexcept;
  Shard& operator=(Shard&& other) noexcept;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard();

  const uint16_t* tokens() const { return tokens_; }  // [size()]
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  Shard() = default;
  void release() noexcept;

  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  const uint16_t* tokens_ = nullptr;
  size_t size_ = 0;
};

// Streams a shard of a known token count to disk: the data go to `path + ".tmp"`, which
// commit() renames to `path` once exactly `count` tokens were written and flushed to disk.
// Destroying an uncommitted writer removes the temporary, so a failure never leaves a
// partial file under the final name (nor a stale temporary).
// Errors (InputError):
//   cannot write shard 'P.tmp': <strerror>            (directory missing / not writable)
//   shard 'P': N tokens exceed the format's limit of 2147483647
//   write to 'P.tmp' failed: <strerror>
//   shard 'P': wrote W tokens, the header says N       (commit with a wrong count)
//   cannot rename 'P.tmp' to 'P': <strerror>
class ShardWriter {
 public:
  ShardWriter(const std::string& path, uint64_t count);
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;
  ~ShardWriter();

  void write(const uint16_t* tokens, size_t n);
  void commit();

 private:
  void fail(const std::string& what);

  std::string path_;
  std::string tmp_;
  uint64_t count_ = 0;
  uint64_t written_ = 0;
  std::FILE* file_ = nullptr;
};

// Writes tokens[0..n) as the shard `path` (atomically, through ShardWriter).
void write_shard(const std::string& path, const uint16_t* tokens, size_t n);

}  // namespace ph
