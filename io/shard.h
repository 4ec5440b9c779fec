// Token shards in the llm.c format, so that shards made by llm.c and nanoGPT-style scripts
// work as they are. Two layouts:
//
//   uint16 (GPT-2 sized vocabularies):
//   bytes [0, 1024)          256 little-endian int32: [0] = 20240520 (magic), [1] = 1
//                            (version), [2] = token count N, the rest zero
//   bytes [1024, 1024 + 2N)  N little-endian uint16 token ids
//
//   uint32 (vocabularies past 65,536 ids, llm.c's layout for them):
//   bytes [0, 1024)          [0] = 20240801 (magic), [1] = 7 (version), [2] = N
//   bytes [1024, 1024 + 4N)  N little-endian uint32 token ids
//
// A file is exactly 1024 + 2·N (or 4·N) bytes. Shards are memory-mapped read-only and validated in
// full (header, size, every token id < vocab) when opened, before any training starts.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace ph {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr int32_t kShardMagicU32 = 20240801;
inline constexpr int32_t kShardVersionU32 = 7;
inline constexpr size_t kShardHeaderInts = 256;
inline constexpr size_t kShardHeaderBytes = kShardHeaderInts * sizeof(int32_t);
inline constexpr uint64_t kShardMaxTokens = 2147483647;  // the header's count is an int32

enum class TokenWidth { U16, U32 };

// A validated, read-only, memory-mapped shard. Movable, not copyable; unmapped on
// destruction. tokens() / tokens32() stay valid (and at the same address) while the Shard lives,
// including across moves.
class Shard {
 public:
  // Opens, maps and validates `path` (either layout); every token id must be < vocab_size.
  // Throws InputError naming the file on any problem:
  //   data shard 'P': cannot open: <strerror>
  //   data shard 'P': not a regular file
  //   data shard 'P': file is S bytes, smaller than the 1024-byte header
  //   data shard 'P': bad magic number M (expected 20240520 or 20240801); not an llm.c token
  //     shard
  //   data shard 'P': unsupported version V (expected 1 for magic 20240520)   (7 for 20240801)
  //   data shard 'P': header token count C is negative
  //   data shard 'P': file is S bytes but the header's token count C needs
  //     1024 + 2*C = E bytes                                                  (4*C for uint32)
  //   data shard 'P': token id I at position K is >= vocab_size V
  //   data shard 'P': cannot map: <strerror>
  static Shard open(const std::string& path, int vocab_size);

  Shard(Shard&& other) noexcept;
  Shard& operator=(Shard&& other) noexcept;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard();

  TokenWidth width() const { return width_; }
  // The ids in place: tokens() of a U16 shard, tokens32() of a U32 one ([size()]; the other
  // is nullptr).
  const uint16_t* tokens() const { return width_ == TokenWidth::U16 ? tokens16_ : nullptr; }
  const uint32_t* tokens32() const { return width_ == TokenWidth::U32 ? tokens32_ : nullptr; }
  // Copies ids [begin, begin + n) into out (begin + n <= size()).
  void read(size_t begin, size_t n, int32_t* out) const;
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  Shard() = default;
  void release() noexcept;

  std::string path_;
  void* map_ = nullptr;
  size_t map_bytes_ = 0;
  TokenWidth width_ = TokenWidth::U16;
  const uint16_t* tokens16_ = nullptr;
  const uint32_t* tokens32_ = nullptr;
  size_t size_ = 0;
};

// U16 when every id of a vocabulary of vocab_size ids fits in 16 bits, else U32.
TokenWidth token_width_for(int vocab_size);

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
  ShardWriter(const std::string& path, uint64_t count, TokenWidth width = TokenWidth::U16);
  ShardWriter(const ShardWriter&) = delete;
  ShardWriter& operator=(const ShardWriter&) = delete;
  ~ShardWriter();

  // The ids of a U16 writer; of a U32 writer (each must fit the writer's width).
  void write(const uint16_t* tokens, size_t n);
  void write(const uint32_t* tokens, size_t n);
  void commit();

 private:
  void fail(const std::string& what);
  void append(const void* ids, size_t id_bytes, size_t n);

  std::string path_;
  std::string tmp_;
  uint64_t count_ = 0;
  uint64_t written_ = 0;
  TokenWidth width_ = TokenWidth::U16;
  std::FILE* file_ = nullptr;
};

// Writes ids[0..n) (each in [0, vocab_size)) as the shard `path` in the layout of
// token_width_for(vocab_size), atomically.
void write_token_shard(const std::string& path, const int32_t* ids, size_t n, int vocab_size);

// Writes tokens[0..n) as the shard `path` (atomically, through ShardWriter).
void write_shard(const std::string& path, const uint16_t* tokens, size_t n);

// write_shard, unless `path` is already a valid byte shard (ids < 256) holding exactly `tokens`:
// such a file is left untouched (the synthetic tasks regenerate their data on every run).
void update_byte_shard(const std::string& path, const std::vector<uint16_t>& tokens);

}  // namespace ph
