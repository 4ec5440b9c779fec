#include "io/shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <utility>

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

}  // namespace

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
  if (header[0] != kShardMagic) {
    shard_error(path, "bad magic number " + std::to_string(header[0]) + " (expected " +
                          std::to_string(kShardMagic) + "); not an llm.c token shard");
  }
  if (header[1] != kShardVersion) {
    shard_error(path, "unsupported version " + std::to_string(header[1]) + " (expected " +
                          std::to_string(kShardVersion) + ")");
  }
  const int64_t count = header[2];
  if (count < 0) {
    shard_error(path, "header token count " + std::to_string(count) + " is negative");
  }
  const int64_t expected = static_cast<int64_t>(kShardHeaderBytes) + 2 * count;
  if (file_bytes != expected) {
    shard_error(path, "file is " + std::to_string(file_bytes) +
                          " bytes but the header's token count " + std::to_string(count) +
                          " needs " + std::to_string(kShardHeaderBytes) + " + 2*" +
                          std::to_string(count) + " = " + std::to_string(expected) + " bytes");
  }
  shard.tokens_ =
      reinterpret_cast<const uint16_t*>(static_cast<const char*>(map) + kShardHeaderBytes);
  shard.size_ = static_cast<size_t>(count);

  if (vocab_size < 65536) {
    // One vectorisable pass for the maximum; the offending position only on failure.
    const uint16_t* t = shard.tokens_;
    uint16_t max_id = 0;
    for (size_t i = 0; i < shard.size_; ++i) max_id = t[i] > max_id ? t[i] : max_id;
    if (shard.size_ > 0 && static_cast<int>(max_id) >= vocab_size) {
      size_t pos = 0;
      while (static_cast<int>(t[pos]) < vocab_size) ++pos;
      shard_error(path, "token id " + std::to_string(t[pos]) + " at position " +
                            std::to_string(pos) + " is >= vocab_size " +
                            std::to_string(vocab_size));
    }
  }
  return shard;
}

Shard::Shard(Shard&& other) noexcept
    : path_(std::move(other.path_)),
      map_(std::exchange(other.map_, nullptr)),
      map_bytes_(std::exchange(other.map_bytes_, 0)),
      tokens_(std::exchange(other.tokens_, nullptr)),
      size_(std::exchange(other.size_, 0)) {}

Shard& Shard::operator=(Shard&& other) noexcept {
  if (this != &other) {
    release();
    path_ = std::move(other.path_);
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
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
  tokens_ = nullptr;
  size_ = 0;
}

ShardWriter::ShardWriter(const std::string& path, uint64_t count)
    : path_(path), tmp_(path + ".tmp"), count_(count) {
  if (count > kShardMaxTokens) {
    throw InputError("shard '" + path + "': " + std::to_string(count) +
                     " tokens exceed the format's limit of " + std::to_string(kShardMaxTokens));
  }
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (file_ == nullptr) {
    throw InputError("cannot write shard '" + tmp_ + "': " + std::strerror(errno));
  }
  int32_t header[kShardHeaderInts] = {};
  header[0] = kShardMagic;
  header[1] = kShardVersion;
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
  if (file_ == nullptr) throw std::logic_error("ShardWriter::write after commit or failure");
  if (n == 0) return;
  if (std::fwrite(tokens, sizeof(uint16_t), n, file_) != n) fail("write to '" + tmp_ + "' failed");
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

}  // namespace ph
