#include "io/prepare.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <omp.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string_view>

#include "io/config.h"
#include "io/pretokenizer.h"
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
  ShardSequence(const std::vector<std::string>& paths, const std::vector<uint64_t>& counts,
                TokenWidth width)
      : paths_(paths), counts_(counts), width_(width) {}

  template <class Id>
  void write(const Id* tokens, size_t n) {
    while (n > 0) {
      if (!writer_) {
        writer_ = std::make_unique<ShardWriter>(paths_[next_], counts_[next_], width_);
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
  TokenWidth width_;
  std::unique_ptr<ShardWriter> writer_;
  size_t next_ = 0;
  uint64_t left_ = 0;
};

void make_output_dir(const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    throw InputError("prepare: cannot create output directory '" + out_dir + "': " + ec.message());
  }
}

// The sizes of the inputs, each checked to be a readable regular file, before anything is
// written.
std::vector<uint64_t> input_sizes(const std::vector<std::string>& inputs) {
  if (inputs.empty()) throw InputError("prepare: no input files given");
  std::vector<uint64_t> sizes;
  for (const std::string& path : inputs) {
    const File f = open_input(path);
    struct stat st {};
    if (::fstat(::fileno(f.get()), &st) != 0) {
      throw InputError("prepare: input '" + path + "': cannot open: " + std::strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
      throw InputError("prepare: input '" + path + "' is not a regular file");
    sizes.push_back(static_cast<uint64_t>(st.st_size));
  }
  return sizes;
}

void check_fraction(double val_fraction, uint64_t max_shard_tokens) {
  if (!(val_fraction > 0.0 && val_fraction < 1.0)) {
    throw InputError("prepare: val_fraction must be in (0, 1), got " +
                     format_fraction(val_fraction));
  }
  if (max_shard_tokens < 1) throw std::invalid_argument("prepare: max_shard_tokens must be >= 1");
}

// Splits `total` tokens into the last round(total · val_fraction) for validation and the rest
// for training, creates out_dir and plans the shards of both.
void plan_output(PreparedText& result, uint64_t total, double val_fraction,
                 uint64_t max_shard_tokens, const std::string& out_dir,
                 std::vector<std::string>& paths, std::vector<uint64_t>& counts) {
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
  make_output_dir(out_dir);
  const std::filesystem::path dir(out_dir);
  plan_split(dir, "train", result.train_tokens, max_shard_tokens, result.train_files, counts);
  plan_split(dir, "val", result.val_tokens, max_shard_tokens, result.val_files, counts);
  paths = result.train_files;
  paths.insert(paths.end(), result.val_files.begin(), result.val_files.end());
}

// An input file mapped read-only (file-backed pages: nothing is copied into memory).
class MappedInput {
 public:
  MappedInput(const std::string& path, uint64_t size) : size_(static_cast<size_t>(size)) {
    if (size_ == 0) return;
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
      throw InputError("prepare: input '" + path + "': cannot open: " + std::strerror(errno));
    map_ = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);
    if (map_ == MAP_FAILED) {
      map_ = nullptr;
      throw InputError("prepare: input '" + path + "': cannot map: " + std::strerror(err));
    }
  }
  MappedInput(const MappedInput&) = delete;
  MappedInput& operator=(const MappedInput&) = delete;
  ~MappedInput() {
    if (map_ != nullptr) ::munmap(map_, size_);
  }
  std::string_view text() const {
    return map_ == nullptr ? std::string_view() : std::string_view(static_cast<char*>(map_), size_);
  }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
};

bool blank_line(std::string_view line) {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// The documents of a text: the whole text, or its blocks of non-blank lines.
std::vector<std::string_view> documents_of(std::string_view text, DocSeparator sep) {
  std::vector<std::string_view> docs;
  if (sep == DocSeparator::File) {
    if (!text.empty()) docs.push_back(text);
    return docs;
  }
  size_t begin = std::string_view::npos;  // start of the current block
  size_t pos = 0;
  while (pos < text.size()) {
    const size_t nl = text.find('\n', pos);
    const size_t end = nl == std::string_view::npos ? text.size() : nl + 1;
    const bool blank = blank_line(text.substr(pos, end - pos));
    if (!blank && begin == std::string_view::npos) begin = pos;
    if (blank && begin != std::string_view::npos) {
      docs.push_back(text.substr(begin, pos - begin));
      begin = std::string_view::npos;
    }
    pos = end;
  }
  if (begin != std::string_view::npos) docs.push_back(text.substr(begin));
  return docs;
}

// A unit of encoding work: a stretch of one document (cut at gpt2_safe_split points, so it
// encodes as it would within the whole document), led by the EOT when it starts the document.
struct Segment {
  std::string_view text;
  bool starts_document = false;
};

constexpr size_t kSegmentBytes = size_t{1} << 20;

void add_segments(std::string_view doc, std::vector<Segment>& out) {
  size_t pos = 0;
  bool first = true;
  while (pos < doc.size()) {
    const size_t end =
        doc.size() - pos <= kSegmentBytes ? doc.size() : gpt2_safe_split(doc, pos + kSegmentBytes);
    out.push_back({doc.substr(pos, end - pos), first});
    first = false;
    pos = end;
  }
}

// The ids of a preparation on their way to the shards: a temporary file in the output
// directory, removed when this object goes.
class IdSpool {
 public:
  explicit IdSpool(const std::string& dir)
      : path_((std::filesystem::path(dir) / (".prepare-" + std::to_string(::getpid()) + ".ids"))
                  .string()) {
    file_ = std::fopen(path_.c_str(), "w+b");
    if (file_ == nullptr)
      throw IoError("prepare: cannot create " + path_ + ": " + std::strerror(errno));
  }
  IdSpool(const IdSpool&) = delete;
  IdSpool& operator=(const IdSpool&) = delete;
  ~IdSpool() {
    if (file_ != nullptr) std::fclose(file_);
    std::remove(path_.c_str());
  }
  void append(const std::vector<uint32_t>& ids) {
    if (!ids.empty() && std::fwrite(ids.data(), sizeof(uint32_t), ids.size(), file_) != ids.size())
      throw IoError("prepare: cannot write " + path_ + ": " + std::strerror(errno));
    count_ += ids.size();
  }
  uint64_t count() const { return count_; }
  // Streams every id, in order, into out.
  void copy_to(ShardSequence& out) {
    if (std::fflush(file_) != 0 || std::fseek(file_, 0, SEEK_SET) != 0)
      throw IoError("prepare: cannot read back " + path_ + ": " + std::strerror(errno));
    std::vector<uint32_t> block(size_t{1} << 20);
    std::vector<uint16_t> narrow(block.size());
    uint64_t left = count_;
    while (left > 0) {
      const size_t want = static_cast<size_t>(std::min<uint64_t>(left, block.size()));
      if (std::fread(block.data(), sizeof(uint32_t), want, file_) != want)
        throw IoError("prepare: cannot read back " + path_ + ": " + std::strerror(errno));
      if (narrow_) {
        for (size_t i = 0; i < want; ++i) narrow[i] = static_cast<uint16_t>(block[i]);
        out.write(narrow.data(), want);
      } else {
        out.write(block.data(), want);
      }
      left -= want;
    }
  }
  void set_narrow(bool narrow) { narrow_ = narrow; }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  uint64_t count_ = 0;
  bool narrow_ = false;
};

// Encodes segments in parallel (each on one thread, into its own vector) and spools the ids
// in order, so the result does not depend on the thread count.
void encode_segments(const std::vector<Segment>& segs, const Tokenizer& tok, int32_t eot,
                     int threads, IdSpool& spool) {
  std::vector<std::vector<uint32_t>> ids(segs.size());
  const long n = static_cast<long>(segs.size());
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (long i = 0; i < n; ++i) {
    const Segment& s = segs[static_cast<size_t>(i)];
    std::vector<uint32_t>& out = ids[static_cast<size_t>(i)];
    if (s.starts_document && eot >= 0) out.push_back(static_cast<uint32_t>(eot));
    for (const int32_t id : tok.encode(s.text)) out.push_back(static_cast<uint32_t>(id));
  }
  for (const std::vector<uint32_t>& v : ids) spool.append(v);
}

}  // namespace

PreparedText prepare_text(const std::vector<std::string>& inputs, const std::string& out_dir,
                          double val_fraction, uint64_t max_shard_tokens) {
  const std::vector<uint64_t> sizes = input_sizes(inputs);
  check_fraction(val_fraction, max_shard_tokens);
  uint64_t total = 0;
  for (const uint64_t n : sizes) total += n;
  if (total == 0) throw InputError("prepare: the inputs contain no text");

  PreparedText result;
  result.input_bytes = total;
  std::vector<std::string> paths;
  std::vector<uint64_t> counts;
  plan_output(result, total, val_fraction, max_shard_tokens, out_dir, paths, counts);

  ShardSequence out(paths, counts, TokenWidth::U16);
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

PreparedText prepare_tokenized(const std::vector<std::string>& inputs, const std::string& out_dir,
                               const Tokenizer& tokenizer, const PrepareOptions& options) {
  const std::vector<uint64_t> sizes = input_sizes(inputs);
  check_fraction(options.val_fraction, options.max_shard_tokens);
  PreparedText result;
  for (const uint64_t n : sizes) result.input_bytes += n;
  if (result.input_bytes == 0) throw InputError("prepare: the inputs contain no text");
  int32_t eot = -1;
  if (!options.eot.empty()) {
    const std::optional<int32_t> id = tokenizer.id_of(options.eot);
    if (!id)
      throw InputError("prepare: the tokenizer has no end-of-text token \"" +
                       printable(options.eot) + "\" (name one with --eot TOKEN, or --eot none)");
    eot = *id;
  }
  make_output_dir(out_dir);
  IdSpool spool(out_dir);
  const int threads = std::max(1, options.threads);
  std::vector<Segment> batch;
  size_t batch_bytes = 0;
  auto flush = [&] {
    encode_segments(batch, tokenizer, eot, threads, spool);
    batch.clear();
    batch_bytes = 0;
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    const MappedInput input(inputs[i], sizes[i]);
    for (const std::string_view doc : documents_of(input.text(), options.documents)) {
      ++result.documents;
      add_segments(doc, batch);
      batch_bytes += doc.size();
      if (batch_bytes >= 64 * kSegmentBytes) flush();
    }
    flush();  // before the input is unmapped
  }
  if (result.documents == 0) throw InputError("prepare: the inputs contain no text");

  std::vector<std::string> paths;
  std::vector<uint64_t> counts;
  plan_output(result, spool.count(), options.val_fraction, options.max_shard_tokens, out_dir, paths,
              counts);
  const TokenWidth width = token_width_for(tokenizer.size());
  spool.set_narrow(width == TokenWidth::U16);
  ShardSequence out(paths, counts, width);
  spool.copy_to(out);
  return result;
}

}  // namespace ph
