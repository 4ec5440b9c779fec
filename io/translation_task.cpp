#include "io/translation_task.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "io/bpe.h"
#include "io/bpe_trainer.h"
#include "io/config.h"
#include "io/pair_file.h"
#include "kernels/common/rng_streams.h"

namespace ph {

namespace {

constexpr int kMaxDigits = 9;

constexpr const char* kOnes[20] = {"zero",    "one",     "two",       "three",    "four",
                                   "five",    "six",     "seven",     "eight",    "nine",
                                   "ten",     "eleven",  "twelve",    "thirteen", "fourteen",
                                   "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"};
constexpr const char* kTens[10] = {"",      "",      "twenty",  "thirty", "forty",
                                   "fifty", "sixty", "seventy", "eighty", "ninety"};

void check_digits(int digits) {
  if (digits < 1 || digits > kMaxDigits) {
    throw InputError("translation task: digits must be in [1, " + std::to_string(kMaxDigits) +
                     "], got " + std::to_string(digits));
  }
}

// Appends the words of 1 <= n <= 999, after a space if out is not empty.
void append_below_thousand(long n, std::string& out) {
  const auto word = [&out](const std::string& w) {
    if (!out.empty()) out.push_back(' ');
    out += w;
  };
  if (n >= 100) {
    word(std::string(kOnes[n / 100]) + " hundred");
    n %= 100;
  }
  if (n == 0) return;
  if (n < 20) {
    word(kOnes[n]);
  } else {
    word(std::string(kTens[n / 10]) + (n % 10 != 0 ? std::string("-") + kOnes[n % 10] : ""));
  }
}

// Uniform integer in [0, bound), 1 <= bound < 2^32, from the stream (seed, kTranslationA, 0)
// at counter `next` (advanced past the draws used): Lemire's multiply-shift with rejection.
uint32_t uniform_below(uint32_t bound, uint64_t seed, uint64_t& next) {
  const uint32_t threshold = static_cast<uint32_t>(-bound) % bound;
  for (;;) {
    const uint64_t m =
        static_cast<uint64_t>(philox_bits(seed, rng::kTranslationA, 0, next++)) * bound;
    if (static_cast<uint32_t>(m) >= threshold) return static_cast<uint32_t>(m >> 32);
  }
}

// Whether `path` holds exactly `text`.
bool file_holds(const std::string& path, const std::string& text) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::stringstream s;
  s << f.rdbuf();
  return s.str() == text;
}

// Replaces `path` with `text` (temporary + rename) unless it already holds exactly that.
void write_text(const std::string& path, const std::string& text) {
  if (file_holds(path, text)) return;
  const std::string tmp = path + ".tmp";
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  bool ok = f != nullptr;
  if (ok) ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (ok) ok = std::fflush(f) == 0 && ::fsync(::fileno(f)) == 0;
  const int err = errno;
  if (f != nullptr && std::fclose(f) != 0 && ok) ok = false;
  if (ok && std::rename(tmp.c_str(), path.c_str()) == 0) return;
  const int failure = ok ? errno : err;
  std::remove(tmp.c_str());
  throw IoError("translation task: cannot write '" + path + "': " + std::strerror(failure));
}

// Whether `path` is a valid pair file holding exactly `pairs` (source and target ids).
bool pairs_hold(const std::string& path, int vocab_size,
                const std::vector<std::vector<int32_t>>& source,
                const std::vector<std::vector<int32_t>>& target) {
  try {
    const PairFile f = PairFile::open(path, vocab_size);
    if (f.size() != source.size() || f.vocab_size() != vocab_size) return false;
    std::vector<int32_t> ids;
    for (uint64_t i = 0; i < f.size(); ++i) {
      const std::vector<int32_t>& x = source[static_cast<size_t>(i)];
      const std::vector<int32_t>& y = target[static_cast<size_t>(i)];
      if (f.source_length(i) != x.size() || f.target_length(i) != y.size()) return false;
      ids.resize(std::max(x.size(), y.size()));
      f.read_source(i, x.size(), ids.data());
      if (!std::equal(x.begin(), x.end(), ids.begin())) return false;
      f.read_target(i, y.size(), ids.data());
      if (!std::equal(y.begin(), y.end(), ids.begin())) return false;
    }
    return true;
  } catch (const InputError&) {
    return false;
  }
}

// Encodes the lines of one split and writes its pair file (unless it already holds them).
void write_pairs(const std::string& path, const BpeTokenizer& tokenizer,
                 const std::vector<long>& numbers) {
  std::vector<std::vector<int32_t>> source, target;
  source.reserve(numbers.size());
  target.reserve(numbers.size());
  for (const long n : numbers) {
    source.push_back(tokenizer.encode(std::to_string(n)));
    target.push_back(tokenizer.encode(TranslationTask::words(n)));
  }
  if (pairs_hold(path, tokenizer.size(), source, target)) return;
  PairWriter out(path, tokenizer.size());
  for (size_t i = 0; i < numbers.size(); ++i)
    out.add(source[i].data(), source[i].size(), target[i].data(), target[i].size());
  out.commit();
}

}  // namespace

long TranslationTask::max_number() const {
  check_digits(digits);
  long m = 1;
  for (int i = 0; i < digits; ++i) m *= 10;
  return m - 1;
}

std::string TranslationTask::words(long n) {
  if (n < 0 || n >= 1000000000L) {
    throw std::out_of_range("translation task: " + std::to_string(n) + " outside [0, 10^9)");
  }
  if (n == 0) return kOnes[0];
  std::string out;
  for (const auto& [scale, name] :
       {std::pair{1000000L, " million"}, std::pair{1000L, " thousand"}, std::pair{1L, ""}}) {
    const long group = n / scale % 1000;
    if (group == 0) continue;
    append_below_thousand(group, out);
    out += name;
  }
  return out;
}

bool TranslationTask::is_val(long n) {
  const uint64_t v = static_cast<uint64_t>(n);
  const Philox4 h = philox4x32(static_cast<uint32_t>(v), static_cast<uint32_t>(v >> 32), 0, 0,
                               hash_name("translation.validation"), 0);
  return h.v[0] % 10 == 0;
}

void TranslationTask::draw(uint64_t seed, int train_pairs, int val_pairs, std::vector<long>& train,
                           std::vector<long>& val) const {
  const uint32_t bound = static_cast<uint32_t>(max_number()) + 1;
  const size_t n_train = static_cast<size_t>(std::max(train_pairs, 0));
  const size_t n_val = static_cast<size_t>(std::max(val_pairs, 0));
  train.clear();
  val.clear();
  train.reserve(n_train);
  val.reserve(n_val);
  // Terminates: both splits are non-empty among the single-digit numbers (tested), which every
  // digits >= 1 contains.
  uint64_t counter = 0;
  while (train.size() < n_train || val.size() < n_val) {
    const long n = static_cast<long>(uniform_below(bound, seed, counter));
    std::vector<long>& split = is_val(n) ? val : train;
    if (split.size() < (&split == &val ? n_val : n_train)) split.push_back(n);
  }
}

void TranslationTask::generate(const std::string& dir, uint64_t seed, int train_pairs,
                               int val_pairs) const {
  check_digits(digits);
  for (const auto& [name, n] :
       {std::pair{"train_pairs", train_pairs}, std::pair{"val_pairs", val_pairs}}) {
    if (n < 1) {
      throw InputError(std::string("translation task: ") + name + " must be >= 1, got " +
                       std::to_string(n));
    }
  }
  const std::filesystem::path base(dir);
  std::error_code ec;
  std::filesystem::create_directories(base / "tokenizer", ec);
  if (ec) {
    throw InputError("translation task: cannot create directory '" + dir + "': " + ec.message());
  }
  std::vector<long> train, val;
  draw(seed, train_pairs, val_pairs, train, val);
  for (const auto& [split, numbers] : {std::pair{"train", &train}, std::pair{"val", &val}}) {
    std::string src, tgt;
    for (const long n : *numbers) {
      src += std::to_string(n) + "\n";
      tgt += words(n) + "\n";
    }
    write_text((base / (std::string(split) + ".src")).string(), src);
    write_text((base / (std::string(split) + ".tgt")).string(), tgt);
  }

  BpeTrainOptions o;
  o.vocab_size = kMaxVocabSize;
  o.specials = {kPad, kBos, kEos};
  o.threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const BpeTokenizer tokenizer = train_bpe({(base / "train.tgt").string()}, o);
  const std::filesystem::path tok_dir = base / "tokenizer";
  write_text((tok_dir / "vocab.json").string(), tokenizer.vocab_text());
  write_text((tok_dir / "merges.txt").string(), tokenizer.merges_text());
  write_pairs((base / "train.pairs").string(), tokenizer, train);
  write_pairs((base / "val.pairs").string(), tokenizer, val);
}

TaskScore TranslationTask::score(const int32_t* targets, const int32_t* predictions, int N, int T,
                                 int32_t ignore_index) {
  TaskScore s;
  for (int n = 0; n < N; ++n) {
    const size_t row = static_cast<size_t>(n) * static_cast<size_t>(T);
    bool counted = false, correct = true;
    for (int t = 0; t < T; ++t) {
      if (targets[row + t] == ignore_index) continue;
      counted = true;
      correct = correct && predictions[row + t] == targets[row + t];
    }
    s.total += counted ? 1 : 0;
    s.correct += counted && correct ? 1 : 0;
  }
  return s;
}

}  // namespace ph
