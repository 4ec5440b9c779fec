#include "io/shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>
#include <vector>

#include "io/config.h"

namespace ph {

static_assert(std::endian::native == std::endian::little,
              "llm.c shards are little-endian; the mapped tokens are used in place");

namespace {

[[noreturn]] void shard_error(const std::string& path, const std::string& what) {
  throw InputError("data shard '" + path + "': " + what);
}

// Closes a file descriptor when the scope ends.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) ::close(fd);
  }
};

// Every id of t[0..n) must be < vocab_size: one vectorisable pass for the maximum, the
// offending position only on failure.
template <class Id>
void check_ids(const std::string& path, const Id* t, size_t n, int vocab_size) {
  Id max_id = 0;
  for (size_t i = 0; i < n; ++i) max_id = t[i] > max_id ? t[i] : max_id;
  if (n == 0 || static_cast<int64_t>(max_id) < vocab_size) return;
  size_t pos = 0;
  while (static_cast<int64_t>(t[pos]) < vocab_size) ++pos;
  shard_error(path, "token id " + std::to_string(t[pos]) + " at position " + std::to_string(pos) +
                        " is >= vocab_size " + std::to_string(vocab_size));
}

}  // namespace

TokenWidth token_width_for(int vocab_size) {
  return vocab_size <= 65536 ? TokenWidth::U16 : TokenWidth::U32;
}

Shard Shard::open(const std::string& path, int vocab_size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) shard_error(path, std::string("cannot open: ") + std::strerror(errno));
  FdCloser closer{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) shard_error(path, std::string("cannot open: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) shard_error(path, "not a regular file");
  const auto file_bytes = static_cast<int64_t>(st.st_size);
  if (file_bytes < static_cast<int64_t>(kShardHeaderBytes)) {
    shard_error(path, "file is " + std::to_string(file_bytes) + " bytes, smaller than the " +
                          std::to_string(kShardHeaderBytes) + "-byte header");
  }

  Shard shard;
  shard.path_ = path;
  shard.map_bytes_ = static_cast<size_t>(file_bytes);
  void* map = ::mmap(nullptr, shard.map_bytes_, PROT_READ, MAP_PRIVATE, fd, 0);
  if (map == MAP_FAILED) shard_error(path, std::string("cannot map: ") + std::strerror(errno));
  shard.map_ = map;  // from here on the destructor unmaps, also when validation throws

  int32_t header[3];
  std::memcpy(header, map, sizeof(header));
  if (header[0] == kShardMagic) {
    shard.width_ = TokenWidth::U16;
  } else if (header[0] == kShardMagicU32) {
    shard.width_ = TokenWidth::U32;
  } else {
    shard_error(path, "bad magic number " + std::to_string(header[0]) + " (expected " +
                          std::to_string(kShardMagic) + " or " + std::to_string(kShardMagicU32) +
                          "); not an llm.c token shard");
  }
  const bool u32 = shard.width_ == TokenWidth::U32;
  const int32_t version = u32 ? kShardVersionU32 : kShardVersion;
  if (header[1] != version) {
    shard_error(path, "unsupported version " + std::to_string(header[1]) + " (expected " +
                          std::to_string(version) + " for magic " + std::to_string(header[0]) +
                          ")");
  }
  const int64_t count = header[2];
  if (count < 0) {
    shard_error(path, "header token count " + std::to_string(count) + " is negative");
  }
  const int64_t id_bytes = u32 ? 4 : 2;
  const int64_t expected = static_cast<int64_t>(kShardHeaderBytes) + id_bytes * count;
  if (file_bytes != expected) {
    shard_error(path, "file is " + std::to_string(file_bytes) +
                          " bytes but the header's token count " + std::to_string(count) +
                          " needs " + std::to_string(kShardHeaderBytes) + " + " +
                          std::to_string(id_bytes) + "*" + std::to_string(count) + " = " +
                          std::to_string(expected) + " bytes");
  }
  const char* ids = static_cast<const char*>(map) + kShardHeaderBytes;
  shard.size_ = static_cast<size_t>(count);
  if (u32) {
    shard.tokens32_ = reinterpret_cast<const uint32_t*>(ids);
    check_ids(path, shard.tokens32_, shard.size_, vocab_size);
  } else {
    shard.tokens16_ = reinterpret_cast<const uint16_t*>(ids);
    if (vocab_size < 65536) check_ids(path, shard.tokens16_, shard.size_, vocab_size);
  }
  return shard;
}

Shard::Shard(Shard&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      width_(other.width_),
      tokens16_(std::exchange(other.tokens16_, nullptr)),
      tokens32_(std::exchange(other.tokens32_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Shard& Shard::operator=(Shard&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    width_ = other.width_;
    tokens16_ = std::exchange(other.tokens16_, nullptr);
    tokens32_ = std::exchange(other.tokens32_, nullptr);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

Shard::~Shard() {
  release();
}

void Shard::release() noexcept {
  if (map_ != nullptr) ::munmap(map_, map_bytes_);
  map_ = nullptr;
  map_bytes_ = 0;
  tokens16_ = nullptr;
  tokens32_ = nullptr;
  size_ = 0;
}

void Shard::read(size_t begin, size_t n, int32_t* out) const {
  if (width_ == TokenWidth::U16) {
    for (size_t i = 0; i < n; ++i) out[i] = tokens16_[begin + i];
  } else {
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(tokens32_[begin + i]);
  }
}

ShardWriter::ShardWriter(const std::string& path, uint64_t count, TokenWidth width)
    : path_(path), tmp_(path + ".tmp"), count_(count), width_(width) {
  if (count > kShardMaxTokens) {
    throw InputError("shard '" + path + "': " + std::to_string(count) +
                     " tokens exceed the format's limit of " + std::to_string(kShardMaxTokens));
  }
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (file_ == nullptr) {
    throw InputError("cannot write shard '" + tmp_ + "': " + std::strerror(errno));
  }
  int32_t header[kShardHeaderInts] = {};
  header[0] = width == TokenWidth::U16 ? kShardMagic : kShardMagicU32;
  header[1] = width == TokenWidth::U16 ? kShardVersion : kShardVersionU32;
  header[2] = static_cast<int32_t>(count);
  if (std::fwrite(header, sizeof(header), 1, file_) != 1) fail("write to '" + tmp_ + "' failed");
}

ShardWriter::~ShardWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

void ShardWriter::fail(const std::string& what) {
  const int err = errno;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(tmp_.c_str());
  throw InputError(what + ": " + std::strerror(err));
}

void ShardWriter::write(const uint16_t* tokens, size_t n) {
  if (width_ != TokenWidth::U16) throw std::logic_error("ShardWriter: uint16 ids to a U32 shard");
  append(tokens, sizeof(uint16_t), n);
}

void ShardWriter::write(const uint32_t* tokens, size_t n) {
  if (width_ != TokenWidth::U32) throw std::logic_error("ShardWriter: uint32 ids to a U16 shard");
  append(tokens, sizeof(uint32_t), n);
}

void ShardWriter::append(const void* ids, size_t id_bytes, size_t n) {
  if (file_ == nullptr) throw std::logic_error("ShardWriter::write after commit or failure");
  if (n == 0) return;
  if (std::fwrite(ids, id_bytes, n, file_) != n) fail("write to '" + tmp_ + "' failed");
  written_ += n;
}

void ShardWriter::commit() {
  if (file_ == nullptr) throw std::logic_error("ShardWriter::commit after commit or failure");
  if (written_ != count_) {
    std::fclose(file_);
    file_ = nullptr;
    std::remove(tmp_.c_str());
    throw InputError("shard '" + path_ + "': wrote " + std::to_string(written_) +
                     " tokens, the header says " + std::to_string(count_));
  }
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) {
    fail("write to '" + tmp_ + "' failed");
  }
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) {
    const int err = errno;
    std::remove(tmp_.c_str());
    throw InputError("write to '" + tmp_ + "' failed: " + std::strerror(err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_.c_str());
    throw InputError("cannot rename '" + tmp_ + "' to '" + path_ + "': " + std::strerror(err));
  }
}

void write_shard(const std::string& path, const uint16_t* tokens, size_t n) {
  ShardWriter writer(path, n);
  writer.write(tokens, n);
  writer.commit();
}

void update_byte_shard(const std::string& path, const std::vector<uint16_t>& tokens) {
  try {
    const Shard shard = Shard::open(path, 256);
    if (shard.size() == tokens.size() &&
        std::memcmp(shard.tokens(), tokens.data(), tokens.size() * sizeof(uint16_t)) == 0)
      return;
  } catch (const InputError&) {
    // absent, or not a byte shard: written below
  }
  write_shard(path, tokens.data(), tokens.size());
}

void write_token_shard(const std::string& path, const int32_t* ids, size_t n, int vocab_size) {
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size)
      throw std::logic_error("write_token_shard: id " + std::to_string(ids[i]) + " at " +
                             std::to_string(i) + " outside the vocabulary of " +
                             std::to_string(vocab_size));
  }
  const TokenWidth width = token_width_for(vocab_size);
  ShardWriter writer(path, n, width);
  constexpr size_t kBlock = 1 << 16;
  std::vector<uint16_t> u16;
  std::vector<uint32_t> u32;
  for (size_t at = 0; at < n; at += kBlock) {
    const size_t m = std::min(kBlock, n - at);
    if (width == TokenWidth::U16) {
      u16.assign(ids + at, ids + at + m);
      writer.write(u16.data(), m);
    } else {
      u32.assign(ids + at, ids + at + m);
      writer.write(u32.data(), m);
    }
  }
  writer.commit();
}

}  // namespace ph
