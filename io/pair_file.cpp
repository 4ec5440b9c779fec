#include "io/pair_file.h"

#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "io/config.h"

namespace ph {

static_assert(std::endian::native == std::endian::little,
              "pair files are little-endian; the mapped ids are used in place");

namespace {

// The header as it lies in the file (64 bytes, no padding).
struct PairHeader {
  char magic[8];
  uint32_t version;
  uint32_t id_width;
  uint64_t pairs;
  uint64_t source_tokens;
  uint64_t target_tokens;
  uint32_t vocab_size;
  char zero[20];
};
static_assert(sizeof(PairHeader) == kPairHeaderBytes);

uint32_t id_width_of(int vocab_size) {
  return token_width_for(vocab_size) == TokenWidth::U16 ? 2 : 4;
}

uint64_t round_up8(uint64_t n) {
  return (n + 7) / 8 * 8;
}

// Bytes of a file with these counts; false if that does not fit in 64 bits.
bool file_bytes_for(uint64_t pairs, uint64_t ids, uint64_t width, uint64_t& bytes) {
  uint64_t id_bytes = 0, index_bytes = 0;
  if (__builtin_mul_overflow(ids, width, &id_bytes)) return false;
  if (__builtin_add_overflow(id_bytes, kPairHeaderBytes + 7, &bytes)) return false;
  bytes = bytes / 8 * 8;
  if (__builtin_mul_overflow(pairs, uint64_t{12}, &index_bytes)) return false;
  if (__builtin_add_overflow(bytes, index_bytes, &bytes)) return false;
  return !__builtin_add_overflow(bytes, uint64_t{8}, &bytes);
}

// The first id of ids[0..n) that is >= vocab, or -1: one vectorisable pass for the maximum, the
// position only on failure.
template <class Id>
int64_t first_out_of_vocab(const Id* ids, size_t n, int vocab) {
  Id max_id = 0;
  for (size_t i = 0; i < n; ++i) max_id = ids[i] > max_id ? ids[i] : max_id;
  if (n == 0 || static_cast<int64_t>(max_id) < vocab) return -1;
  size_t at = 0;
  while (static_cast<int64_t>(ids[at]) < vocab) ++at;
  return static_cast<int64_t>(at);
}

}  // namespace

PairFile PairFile::open(const std::string& path, int vocab_size) {
  const std::string label = "pair file '" + path + "'";
  const auto fail = [&](const std::string& what) { throw InputError(label + ": " + what); };
  PairFile f(path, MappedFile(path, label));
  const uint64_t bytes = f.map_.size();
  if (bytes < kPairHeaderBytes) {
    fail("file is " + std::to_string(bytes) + " bytes, smaller than the " +
         std::to_string(kPairHeaderBytes) + "-byte header");
  }
  PairHeader h;
  std::memcpy(&h, f.map_.data(), sizeof(h));
  if (std::memcmp(h.magic, kPairMagic, sizeof(kPairMagic)) != 0)
    fail("bad magic; not a polyhead pair file (polyhead prepare --src --tgt makes them)");
  if (h.version != kPairVersion) {
    fail("unsupported version " + std::to_string(h.version) + " (expected " +
         std::to_string(kPairVersion) + ")");
  }
  if (h.vocab_size < 1 || h.vocab_size > static_cast<uint32_t>(INT32_MAX)) {
    fail("vocabulary size " + std::to_string(h.vocab_size) + " must be in [1, " +
         std::to_string(INT32_MAX) + "]");
  }
  const int vocab = static_cast<int>(h.vocab_size);
  const uint32_t width = id_width_of(vocab);
  if (h.id_width != width) {
    fail("id width " + std::to_string(h.id_width) + " does not match a vocabulary of " +
         std::to_string(vocab) + " ids (expected " + std::to_string(width) + ")");
  }
  if (vocab > vocab_size) {
    throw InputError(label + " was made for a vocabulary of " + std::to_string(vocab) +
                     " ids; the run's has only " + std::to_string(vocab_size) +
                     " (model.vocab_size)");
  }
  uint64_t ids = 0, expected = 0;
  const bool fits = !__builtin_add_overflow(h.source_tokens, h.target_tokens, &ids) &&
                    file_bytes_for(h.pairs, ids, width, expected);
  if (!fits || bytes != expected) {
    fail("file is " + std::to_string(bytes) + " bytes but the header's counts (" +
         std::to_string(h.pairs) + " pairs, " + std::to_string(h.source_tokens) + " source and " +
         std::to_string(h.target_tokens) + " target ids of " + std::to_string(width) +
         " bytes) need " + (fits ? std::to_string(expected) : "more than 2^64") + " bytes");
  }
  const uint64_t index_at = round_up8(kPairHeaderBytes + ids * width);
  f.pairs_ = h.pairs;
  f.source_tokens_ = h.source_tokens;
  f.target_tokens_ = h.target_tokens;
  f.vocab_size_ = vocab;
  f.width_ = width == 2 ? TokenWidth::U16 : TokenWidth::U32;
  f.ids_ = f.map_.data() + kPairHeaderBytes;
  f.begin_ = reinterpret_cast<const uint64_t*>(f.map_.data() + index_at);
  f.source_lengths_ = reinterpret_cast<const uint32_t*>(f.begin_ + h.pairs + 1);

  if (f.begin_[0] != 0)
    fail("the first pair starts at id " + std::to_string(f.begin_[0]) + ", expected 0");
  if (f.begin_[h.pairs] != ids) {
    fail("the pairs end at id " + std::to_string(f.begin_[h.pairs]) + ", but the header counts " +
         std::to_string(h.source_tokens) + "+" + std::to_string(h.target_tokens) + " = " +
         std::to_string(ids) + " ids");
  }
  uint64_t source_sum = 0;
  for (uint64_t k = 0; k < h.pairs; ++k) {
    const uint64_t a = f.begin_[k], b = f.begin_[k + 1], len = f.source_lengths_[k];
    if (b < a || len < 1 || b - a <= len || b - a - len > UINT32_MAX) {
      fail("pair " + std::to_string(k) + " spans ids [" + std::to_string(a) + ", " +
           std::to_string(b) + ") with a source of " + std::to_string(len) +
           " ids; each side needs at least one");
    }
    source_sum += len;
  }
  if (source_sum != h.source_tokens) {
    fail("the source lengths sum to " + std::to_string(source_sum) + ", but the header counts " +
         std::to_string(h.source_tokens) + " source ids");
  }
  const int64_t bad = width == 2 ? first_out_of_vocab(reinterpret_cast<const uint16_t*>(f.ids_),
                                                      static_cast<size_t>(ids), vocab)
                                 : first_out_of_vocab(reinterpret_cast<const uint32_t*>(f.ids_),
                                                      static_cast<size_t>(ids), vocab);
  if (bad >= 0) {
    const uint64_t at = static_cast<uint64_t>(bad);
    // The pair holding id `at`: the last k with begin[k] <= at.
    uint64_t lo = 0, hi = h.pairs;
    while (hi - lo > 1) {
      const uint64_t mid = lo + (hi - lo) / 2;
      (f.begin_[mid] <= at ? lo : hi) = mid;
    }
    int32_t id = 0;
    f.read_ids(at, 1, &id);
    const bool source = at < f.begin_[lo] + f.source_lengths_[lo];
    fail("pair " + std::to_string(lo) + ": " + (source ? "source" : "target") + " id " +
         std::to_string(static_cast<uint32_t>(id)) + " is >= the vocabulary size " +
         std::to_string(vocab));
  }
  return f;
}

void PairFile::read_ids(uint64_t at, size_t n, int32_t* out) const {
  if (width_ == TokenWidth::U16) {
    const auto* ids = reinterpret_cast<const uint16_t*>(ids_) + at;
    for (size_t i = 0; i < n; ++i) out[i] = ids[i];
  } else {
    const auto* ids = reinterpret_cast<const uint32_t*>(ids_) + at;
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<int32_t>(ids[i]);
  }
}

PairWriter::PairWriter(const std::string& path, int vocab_size)
    : path_(path),
      tmp_(path + ".tmp"),
      vocab_size_(vocab_size),
      width_(token_width_for(vocab_size)) {
  if (vocab_size < 1) throw std::invalid_argument("PairWriter: vocab_size must be >= 1");
  file_ = std::fopen(tmp_.c_str(), "wb");
  if (file_ == nullptr)
    throw IoError("cannot write pair file '" + tmp_ + "': " + std::strerror(errno));
  const PairHeader placeholder{};
  write_bytes(&placeholder, sizeof(placeholder));
}

PairWriter::~PairWriter() {
  if (file_ != nullptr) {
    std::fclose(file_);
    std::remove(tmp_.c_str());
  }
}

void PairWriter::fail() {
  const int err = errno;
  std::fclose(file_);
  file_ = nullptr;
  std::remove(tmp_.c_str());
  throw IoError("cannot write pair file '" + tmp_ + "': " + std::strerror(err));
}

void PairWriter::write_bytes(const void* data, size_t bytes) {
  if (bytes > 0 && std::fwrite(data, 1, bytes, file_) != bytes) fail();
}

void PairWriter::append_ids(const int32_t* ids, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size_) {
      throw std::invalid_argument("PairWriter: id " + std::to_string(ids[i]) +
                                  " outside the vocabulary of " + std::to_string(vocab_size_));
    }
    if (width_ == TokenWidth::U16) {
      const auto id = static_cast<uint16_t>(ids[i]);
      buffer_.insert(buffer_.end(), reinterpret_cast<const unsigned char*>(&id),
                     reinterpret_cast<const unsigned char*>(&id) + sizeof(id));
    } else {
      const auto id = static_cast<uint32_t>(ids[i]);
      buffer_.insert(buffer_.end(), reinterpret_cast<const unsigned char*>(&id),
                     reinterpret_cast<const unsigned char*>(&id) + sizeof(id));
    }
  }
}

void PairWriter::add(const int32_t* source, size_t source_n, const int32_t* target,
                     size_t target_n) {
  if (file_ == nullptr) throw std::logic_error("PairWriter::add after commit or failure");
  if (source_n < 1 || target_n < 1 || source_n > UINT32_MAX || target_n > UINT32_MAX) {
    throw std::invalid_argument("PairWriter: a pair needs 1 .. 2^32-1 ids on each side, got " +
                                std::to_string(source_n) + " and " + std::to_string(target_n));
  }
  buffer_.clear();
  append_ids(source, source_n);
  append_ids(target, target_n);
  write_bytes(buffer_.data(), buffer_.size());
  begin_.push_back(begin_.back() + source_n + target_n);
  source_lengths_.push_back(static_cast<uint32_t>(source_n));
  source_tokens_ += source_n;
}

void PairWriter::commit() {
  if (file_ == nullptr) throw std::logic_error("PairWriter::commit after commit or failure");
  const uint64_t ids = begin_.back();
  const uint64_t id_bytes = ids * (width_ == TokenWidth::U16 ? 2 : 4);
  const uint64_t padding = round_up8(kPairHeaderBytes + id_bytes) - (kPairHeaderBytes + id_bytes);
  const char zeros[8] = {};
  write_bytes(zeros, static_cast<size_t>(padding));
  write_bytes(begin_.data(), begin_.size() * sizeof(uint64_t));
  write_bytes(source_lengths_.data(), source_lengths_.size() * sizeof(uint32_t));

  PairHeader h{};
  std::memcpy(h.magic, kPairMagic, sizeof(kPairMagic));
  h.version = kPairVersion;
  h.id_width = id_width_of(vocab_size_);
  h.pairs = size();
  h.source_tokens = source_tokens_;
  h.target_tokens = target_tokens();
  h.vocab_size = static_cast<uint32_t>(vocab_size_);
  if (std::fseek(file_, 0, SEEK_SET) != 0) fail();
  write_bytes(&h, sizeof(h));
  if (std::fflush(file_) != 0 || ::fsync(::fileno(file_)) != 0) fail();
  const int closed = std::fclose(file_);
  file_ = nullptr;
  if (closed != 0) {
    const int err = errno;
    std::remove(tmp_.c_str());
    throw IoError("cannot write pair file '" + tmp_ + "': " + std::strerror(err));
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp_.c_str());
    throw IoError("cannot rename '" + tmp_ + "' to '" + path_ + "': " + std::strerror(err));
  }
}

}  // namespace ph
