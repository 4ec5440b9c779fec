#include "io/addition_task.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <stdexcept>

#include "io/config.h"
#include "io/shard.h"
#include "kernels/common/rng_streams.h"

namespace ph {

namespace {

constexpr int kMaxDigits = 18;

void check_digits(int digits) {
  if (digits < 1 || digits > kMaxDigits) {
    throw InputError("addition task: digits must be in [1, " + std::to_string(kMaxDigits) +
                     "], got " + std::to_string(digits));
  }
}

void append_padded(std::string& out, unsigned long v, int width) {
  const size_t end = out.size() + static_cast<size_t>(width);
  out.resize(end);
  for (size_t i = end; i-- > end - static_cast<size_t>(width);) {
    out[i] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
}

// Uniform integer in [0, bound) from 64 Philox bits per try (two words at counter
// `next`, `next` + 1), rejecting the top partial block: exactly uniform.
uint64_t uniform_below(uint64_t bound, uint64_t seed, uint64_t& next) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % bound;  // a multiple of bound
  for (;;) {
    const uint64_t hi = philox_bits(seed, rng::kAdditionA, 0, next++);
    const uint64_t lo = philox_bits(seed, rng::kAdditionA, 0, next++);
    const uint64_t x = (hi << 32) | lo;
    if (x < limit) return x % bound;
  }
}

}  // namespace

long AdditionTask::max_operand() const {
  check_digits(digits);
  long m = 1;
  for (int i = 0; i < digits; ++i) m *= 10;
  return m - 1;
}

std::string AdditionTask::prompt(long a, long b) const {
  const long max = max_operand();
  if (a < 0 || a > max || b < 0 || b > max) {
    throw std::out_of_range("addition operands " + std::to_string(a) + ", " + std::to_string(b) +
                            " outside [0, " + std::to_string(max) + "]");
  }
  std::string s;
  s.reserve(static_cast<size_t>(line_length()));
  append_padded(s, static_cast<unsigned long>(a), digits);
  s.push_back('+');
  append_padded(s, static_cast<unsigned long>(b), digits);
  s.push_back('=');
  return s;
}

std::string AdditionTask::line(long a, long b) const {
  std::string s = prompt(a, b);
  unsigned long sum = static_cast<unsigned long>(a) + static_cast<unsigned long>(b);
  for (int i = 0; i <= digits; ++i) {
    s.push_back(static_cast<char>('0' + sum % 10));
    sum /= 10;
  }
  s.push_back('\n');
  return s;
}

bool AdditionTask::is_val(long a, long b) {
  const uint64_t lo = static_cast<uint64_t>(std::min(a, b));
  const uint64_t hi = static_cast<uint64_t>(std::max(a, b));
  const Philox4 h = philox4x32(static_cast<uint32_t>(lo), static_cast<uint32_t>(lo >> 32),
                               static_cast<uint32_t>(hi), static_cast<uint32_t>(hi >> 32),
                               hash_name("addition.val"), 0);
  return h.v[0] % 10 == 0;
}

void AdditionTask::draw(uint64_t seed, int train_problems, int val_problems,
                        std::vector<AdditionProblem>& train,
                        std::vector<AdditionProblem>& val) const {
  const uint64_t bound = static_cast<uint64_t>(max_operand()) + 1;
  const size_t n_train = static_cast<size_t>(std::max(train_problems, 0));
  const size_t n_val = static_cast<size_t>(std::max(val_problems, 0));
  train.clear();
  val.clear();
  train.reserve(n_train);
  val.reserve(n_val);
  // Terminates: both splits are non-empty already among single-digit pairs (tested), and
  // every digits >= 1 contains those.
  uint64_t counter = 0;
  while (train.size() < n_train || val.size() < n_val) {
    const AdditionProblem p{static_cast<long>(uniform_below(bound, seed, counter)),
                            static_cast<long>(uniform_below(bound, seed, counter))};
    std::vector<AdditionProblem>& split = is_val(p.a, p.b) ? val : train;
    if (split.size() < (&split == &val ? n_val : n_train)) split.push_back(p);
  }
}

void AdditionTask::generate(const std::string& dir, uint64_t seed, int train_problems,
                            int val_problems) const {
  check_digits(digits);
  for (const auto& [name, n] :
       {std::pair{"train_problems", train_problems}, std::pair{"val_problems", val_problems}}) {
    if (n < 1) {
      throw InputError(std::string("addition task: ") + name + " must be >= 1, got " +
                       std::to_string(n));
    }
    if (static_cast<uint64_t>(n) * static_cast<uint64_t>(line_length()) > kShardMaxTokens) {
      throw InputError("addition task: " + std::to_string(n) + " problems of " +
                       std::to_string(line_length()) + " bytes exceed a shard's " +
                       std::to_string(kShardMaxTokens) + " tokens");
    }
  }
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    throw InputError("addition task: cannot create directory '" + dir + "': " + ec.message());
  }

  std::vector<AdditionProblem> train, val;
  draw(seed, train_problems, val_problems, train, val);
  const auto tokens_of = [this](const std::vector<AdditionProblem>& problems) {
    std::vector<uint16_t> tokens;
    tokens.reserve(problems.size() * static_cast<size_t>(line_length()));
    for (const AdditionProblem& p : problems) {
      for (const char c : line(p.a, p.b)) tokens.push_back(static_cast<unsigned char>(c));
    }
    return tokens;
  };
  const std::filesystem::path base(dir);
  for (const auto& [file, problems] :
       {std::pair{"train.bin", &train}, std::pair{"val.bin", &val}}) {
    const std::string path = (base / file).string();
    update_byte_shard(path, tokens_of(*problems));
  }
}

TaskScore AdditionTask::score(const int32_t* inputs, const int32_t* targets,
                              const int32_t* predictions, int N, int T) const {
  TaskScore s;
  const int prompt_before_eq = 2 * digits + 1;  // "A+B" precedes the '='
  for (int n = 0; n < N; ++n) {
    const size_t row = static_cast<size_t>(n) * static_cast<size_t>(T);
    const int32_t* in = inputs + row;
    const int32_t* tg = targets + row;
    const int32_t* pr = predictions + row;
    for (int t = prompt_before_eq; t < T; ++t) {
      if (in[t] != '=') continue;
      int end = t;
      while (end < T && tg[end] != '\n') ++end;
      if (end == T) continue;  // the line ends past the window
      ++s.total;
      if (std::equal(tg + t, tg + end + 1, pr + t)) ++s.correct;
    }
  }
  return s;
}

bool AdditionTask::parse_answer(std::string_view generated, long& value) const {
  const size_t n = static_cast<size_t>(digits) + 1;
  if (generated.size() < n) return false;
  if (generated.size() > n && generated[n] != '\n') return false;
  long v = 0;
  for (size_t i = n; i-- > 0;) {
    const char c = generated[i];
    if (c < '0' || c > '9') return false;
    if (v > (LONG_MAX - (c - '0')) / 10) return false;  // not a sum of two operands
    v = v * 10 + (c - '0');
  }
  value = v;
  return true;
}

}  // namespace ph
