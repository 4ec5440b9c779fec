#include "io/prepare_pairs.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string_view>
#include <vector>

#include "io/config.h"
#include "io/mapped_file.h"
#include "io/pair_file.h"

namespace ph {

namespace {

// The lines of a text one after the other: without their '\n' and a '\r' before it. A final
// line without '\n' counts; a text ending in '\n' has no empty line after it.
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    const size_t nl = text_.find('\n', pos_);
    const size_t end = nl == std::string_view::npos ? text_.size() : nl;
    line = text_.substr(pos_, end - pos_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos_ = end + 1;
    return true;
  }

 private:
  std::string_view text_;
  size_t pos_ = 0;
};

uint64_t count_lines(std::string_view text) {
  uint64_t n = static_cast<uint64_t>(std::count(text.begin(), text.end(), '\n'));
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
}

bool blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// The first blank line of a text (1-based), or 0.
uint64_t first_blank_line(std::string_view text) {
  LineReader lines(text);
  std::string_view line;
  for (uint64_t n = 1; lines.next(line); ++n)
    if (blank(line)) return n;
  return 0;
}

std::string format_fraction(double f) {
  std::ostringstream s;
  s << f;
  return s.str();
}

constexpr size_t kBlockPairs = 1 << 16;  // pairs encoded in parallel at a time

// Encodes the next `n` lines of both sides (in parallel) and adds them to `out` in order.
void encode_block(LineReader& src, LineReader& tgt, size_t n, const Tokenizer& tokenizer,
                  int threads, PairWriter& out, PreparedPairs& result) {
  std::vector<std::string_view> src_lines(n), tgt_lines(n);
  for (size_t i = 0; i < n; ++i) {
    src.next(src_lines[i]);
    tgt.next(tgt_lines[i]);
  }
  std::vector<std::vector<int32_t>> src_ids(n), tgt_ids(n);
  const long count = static_cast<long>(n);
#pragma omp parallel for schedule(dynamic, 256) num_threads(threads)
  for (long i = 0; i < count; ++i) {
    const size_t k = static_cast<size_t>(i);
    src_ids[k] = tokenizer.encode(src_lines[k]);
    tgt_ids[k] = tokenizer.encode(tgt_lines[k]);
  }
  for (size_t i = 0; i < n; ++i) {
    out.add(src_ids[i].data(), src_ids[i].size(), tgt_ids[i].data(), tgt_ids[i].size());
    result.source_tokens += src_ids[i].size();
    result.target_tokens += tgt_ids[i].size();
  }
}

// Writes the next `pairs` pairs of both readers into the pair file `path`.
void write_split(const std::string& path, uint64_t pairs, LineReader& src, LineReader& tgt,
                 const Tokenizer& tokenizer, int threads, PreparedPairs& result) {
  PairWriter out(path, tokenizer.size());
  for (uint64_t done = 0; done < pairs;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlockPairs, pairs - done));
    encode_block(src, tgt, n, tokenizer, threads, out, result);
    done += n;
  }
  out.commit();
}

}  // namespace

PreparedPairs prepare_pairs(const std::string& source, const std::string& target,
                            const std::string& out_dir, const Tokenizer& tokenizer,
                            const PreparePairsOptions& options) {
  const MappedFile src(source, "prepare: input '" + source + "'");
  const MappedFile tgt(target, "prepare: input '" + target + "'");
  const double f = options.val_fraction;
  if (!(f >= 0.0 && f < 1.0))
    throw InputError("prepare: --val-fraction must be in [0, 1), got " + format_fraction(f));
  const uint64_t n = count_lines(src.text());
  const uint64_t m = count_lines(tgt.text());
  if (n != m) {
    throw InputError("prepare: '" + source + "' has " + std::to_string(n) + " lines but '" +
                     target + "' has " + std::to_string(m) +
                     "; parallel text needs one sentence per line in both");
  }
  if (n == 0) throw InputError("prepare: '" + source + "' and '" + target + "' are empty");
  for (const auto& [path, file] : {std::pair{&source, &src}, std::pair{&target, &tgt}}) {
    if (const uint64_t line = first_blank_line(file->text()); line != 0) {
      throw InputError("prepare: '" + *path + "' line " + std::to_string(line) +
                       " is blank; parallel text needs a sentence on every line");
    }
  }
  PreparedPairs result;
  result.val_pairs =
      std::min<uint64_t>(n, static_cast<uint64_t>(std::llround(static_cast<double>(n) * f)));
  result.train_pairs = n - result.val_pairs;
  const std::string head = "prepare: " + std::to_string(n) + " pairs with --val-fraction " +
                           format_fraction(f) + " leave none for ";
  if (result.train_pairs == 0) throw InputError(head + "training");
  if (f > 0 && result.val_pairs == 0) {
    throw InputError(head +
                     "validation (use a larger fraction, or --val-fraction 0 for no validation "
                     "file)");
  }
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) {
    throw InputError("prepare: cannot create output directory '" + out_dir + "': " + ec.message());
  }
  result.source_bytes = src.size();
  result.target_bytes = tgt.size();
  const std::filesystem::path dir(out_dir);
  const int threads = std::max(1, options.threads);
  LineReader src_lines(src.text()), tgt_lines(tgt.text());
  result.train_file = (dir / "train.pairs").string();
  write_split(result.train_file, result.train_pairs, src_lines, tgt_lines, tokenizer, threads,
              result);
  if (result.val_pairs > 0) {
    result.val_file = (dir / "val.pairs").string();
    write_split(result.val_file, result.val_pairs, src_lines, tgt_lines, tokenizer, threads,
                result);
  }
  return result;
}

}  // namespace ph
