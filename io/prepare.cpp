#include "io/prepare.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "io/config.h"
#include "io/shard.h"

namespace ph {

namespace {

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

File open_input(const std::string& path) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) throw InputError("prepare: input '" + path + "': cannot open: " + std::strerror(errno));
  return f;
}

std::string format_fraction(double f) {
  std::ostringstream s;
  s << f;
  return s.str();
}

// The output files of one split: `stem`.bin, or stem_000.bin, ... when it needs several,
// then of balanced sizes (differing by at most one), so that no shard is left with a short
// tail that could not hold one training sequence.
void plan_split(const std::filesystem::path& dir, const std::string& stem, uint64_t tokens,
                uint64_t per_shard, std::vector<std::string>& paths,
                std::vector<uint64_t>& counts) {
  if (tokens <= per_shard) {
    paths.push_back((dir / (stem + ".bin")).string());
    counts.push_back(tokens);
    return;
  }
  const uint64_t shards = (tokens + per_shard - 1) / per_shard;
  for (uint64_t i = 0; i < shards; ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "_%03llu.bin", static_cast<unsigned long long>(i));
    paths.push_back((dir / (stem + name)).string());
    counts.push_back(tokens / shards + (i < tokens % shards ? 1 : 0));
  }
}

// Feeds a token stream into the planned shards one after the other.
class ShardSequence {
 public:
  ShardSequence(const std::vector<std::string>& paths, const std::vector<uint64_t>& counts)
      : paths_(paths), counts_(counts) {}

  void write(const uint16_t* tokens, size_t n) {
    while (n > 0) {
      if (!writer_) {
        writer_ = std::make_unique<ShardWriter>(paths_[next_], counts_[next_]);
        left_ = counts_[next_];
        ++next_;
      }
      const size_t m = static_cast<size_t>(std::min<uint64_t>(left_, n));
      writer_->write(tokens, m);
      tokens += m;
      n -= m;
      left_ -= m;
      if (left_ == 0) {
        writer_->commit();
        writer_.reset();
      }
    }
  }

 private:
  const std::vector<std::string>& paths_;
  const std::vector<uint64_t>& counts_;
  std::unique_ptr<ShardWriter> writer_;
  size_t next_ = 0;
  uint64_t left_ = 0;
};

}  // namespace

PreparedText prepare_text(const std::vector<std::string>& inputs, const std::string& out_dir,
                          double val_fraction, uint64_t max_shard_tokens) {
  if (inputs.empty()) throw InputError("prepare: no input files given");
  if (!(val_fraction > 0.0 && val_fraction < 1.0)) {
    throw InputError("prepare: val_fraction must be in (0, 1), got " +
                     format_fraction(val_fraction));
  }
  if (max_shard_tokens < 1) throw std::invalid_argument("prepare: max_shard_tokens must be >= 1");

  std::vector<uint64_t> sizes;
  uint64_t total = 0;
  for (const std::string& path : inputs) {
    const File f = open_input(path);
    struct stat st {};
    if (::fstat(::fileno(f.get()), &st) != 0) {
      throw InputError("prepare: input '" + path + "': cannot open: " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
      throw InputError("prepare: input '" + path + "' is not a regular file");
    sizes.push_back(static_cast<uint64_t>(st.st_size));
    total += sizes.back();
  }
  if (total == 0) throw InputError("prepare: the inputs contain no text");

  PreparedText result;
  result.val_tokens =
      static_cast<uint64_t>(std::llround(static_cast<double>(total) * val_fraction));
  result.val_tokens = std::min(result.val_tokens, total);
  result.train_tokens = total - result.val_tokens;
  const std::string split_head = "prepare: " + std::to_string(total) +
                                 " tokens with val_fraction " + format_fraction(val_fraction) +
                                 " leave ";
  if (result.val_tokens < 2) {
    throw InputError(split_head + std::to_string(result.val_tokens) +
                     " for validation; need at least 2");
  }
  if (result.train_tokens < 2) {
    throw InputError(split_head + std::to_string(result.train_tokens) +
                     " for training; need at least 2");
  }

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    throw InputError("prepare: cannot create output directory '" + out_dir + "': " + ec.message());
  }
  const std::filesystem::path dir(out_dir);
  std::vector<uint64_t> counts;
  plan_split(dir, "train", result.train_tokens, max_shard_tokens, result.train_files, counts);
  plan_split(dir, "val", result.val_tokens, max_shard_tokens, result.val_files, counts);
  std::vector<std::string> paths = result.train_files;
  paths.insert(paths.end(), result.val_files.begin(), result.val_files.end());

  ShardSequence out(paths, counts);
  std::vector<unsigned char> bytes(1 << 20);
  std::vector<uint16_t> tokens(bytes.size());
  for (size_t i = 0; i < inputs.size(); ++i) {
    const File f = open_input(inputs[i]);
    uint64_t left = sizes[i];
    while (left > 0) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(left, bytes.size()));
      const size_t got = std::fread(bytes.data(), 1, want, f.get());
      if (got < want && std::ferror(f.get())) {
        throw InputError("prepare: input '" + inputs[i] + "': read error: " + std::strerror(errno));
      }
      if (got == 0) break;
      for (size_t k = 0; k < got; ++k) tokens[k] = bytes[k];
      out.write(tokens.data(), got);
      left -= got;
    }
    if (left != 0 || std::fgetc(f.get()) != EOF) {
      throw InputError("prepare: input '" + inputs[i] + "' changed while being read");
    }
  }
  return result;
}

}  // namespace ph
