#include "io/mlm_masking.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "io/tokenizer.h"
#include "kernels/common/rng_streams.h"

namespace ph {

namespace {

bool whitespace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

// The four words of (seed, sample, position) of the mask stream.
Philox4 mask_words(uint64_t seed, uint64_t sample, int t) {
  return philox4x32(static_cast<uint32_t>(sample), static_cast<uint32_t>(sample >> 32),
                    rng::kMlmMasksA, static_cast<uint32_t>(t), static_cast<uint32_t>(seed),
                    static_cast<uint32_t>(seed >> 32));
}

}  // namespace

std::vector<uint8_t> mlm_token_classes(const Tokenizer& tokenizer,
                                       const std::vector<int32_t>& specials) {
  std::vector<uint8_t> classes(static_cast<size_t>(tokenizer.size()), 0);
  for (int32_t id = 0; id < tokenizer.size(); ++id) {
    const std::string text = tokenizer.token_bytes(id);
    uint8_t c = 0;
    if (!text.empty() && whitespace(text.front())) c |= kMlmWordStart;
    if (!text.empty() && text.back() == '\n') c |= kMlmLineEnd;
    classes[static_cast<size_t>(id)] = c;
  }
  for (const int32_t id : specials)
    if (id >= 0 && id < tokenizer.size()) classes[static_cast<size_t>(id)] = kMlmSpecial;
  return classes;
}

MlmMasking::MlmMasking(const MlmMaskingOptions& options, std::vector<uint8_t> classes)
    : o_(options), classes_(std::move(classes)) {
  if (!(o_.prob > 0.0f && o_.prob <= 1.0f))
    throw std::invalid_argument("MLM masking: prob must be in (0, 1]");
  if (o_.predictions < 1) throw std::invalid_argument("MLM masking: predictions must be >= 1");
  for (size_t id = 0; id < classes_.size(); ++id) {
    if (classes_[id] & kMlmSpecial)
      specials_.push_back(static_cast<int32_t>(id));
    else
      ++ordinary_;
  }
  if (ordinary_ == 0) throw std::invalid_argument("MLM masking: no ordinary token to draw");
}

uint8_t MlmMasking::class_of(int32_t id) const {
  return id >= 0 && static_cast<size_t>(id) < classes_.size() ? classes_[static_cast<size_t>(id)]
                                                              : 0;
}

uint64_t scale_bits(uint64_t bits, uint64_t bound) {
  const uint64_t b_lo = bits & 0xFFFFFFFFu, b_hi = bits >> 32;
  const uint64_t n_lo = bound & 0xFFFFFFFFu, n_hi = bound >> 32;
  const uint64_t lo_lo = b_lo * n_lo, hi_lo = b_hi * n_lo, lo_hi = b_lo * n_hi;
  const uint64_t middle = (lo_lo >> 32) + (hi_lo & 0xFFFFFFFFu) + (lo_hi & 0xFFFFFFFFu);
  return b_hi * n_hi + (hi_lo >> 32) + (lo_hi >> 32) + (middle >> 32);
}

int32_t MlmMasking::random_ordinary(uint64_t bits) const {
  int64_t id = static_cast<int64_t>(scale_bits(bits, ordinary_));  // < K
  for (const int32_t special : specials_)
    if (special <= id) ++id;
  return static_cast<int32_t>(id);
}

int MlmMasking::apply(uint64_t seed, uint64_t sample, int32_t* tokens, int n, int32_t* positions,
                      int32_t* targets) {
  units_.clear();
  int candidates = 0;
  bool after_special = true;
  for (int t = 0; t < n; ++t) {
    const uint8_t c = class_of(tokens[t]);
    if (c & kMlmSpecial) {
      after_special = true;
      continue;
    }
    ++candidates;
    const bool starts = !o_.whole_word || after_special || (c & kMlmWordStart) ||
                        (class_of(tokens[t - 1]) & kMlmLineEnd);
    if (starts)
      units_.push_back(Unit{mask_words(seed, sample, t).v[0], t, 1});
    else
      ++units_.back().size;
    after_special = false;
  }
  const int num =
      candidates == 0
          ? 0
          : std::min(o_.predictions,
                     std::max(1, static_cast<int>(
                                     std::floor(static_cast<double>(candidates) * o_.prob + 0.5))));
  std::sort(units_.begin(), units_.end(), [](const Unit& a, const Unit& b) {
    return a.key != b.key ? a.key < b.key : a.begin < b.begin;
  });
  taken_.assign(static_cast<size_t>(n), 0);
  int count = 0;
  for (const Unit& u : units_) {
    if (count == num) break;
    if (count + u.size > num) continue;
    std::fill(taken_.begin() + u.begin, taken_.begin() + u.begin + u.size, uint8_t{1});
    count += u.size;
  }
  int slot = 0;
  for (int t = 0; t < n; ++t) {
    if (!taken_[static_cast<size_t>(t)]) continue;
    positions[slot] = t;
    targets[slot] = tokens[t];
    ++slot;
    const Philox4 w = mask_words(seed, sample, t);
    const uint32_t d = static_cast<uint32_t>((static_cast<uint64_t>(w.v[1]) * 10u) >> 32);
    if (d < 8)
      tokens[t] = o_.mask;
    else if (d == 8)
      tokens[t] = random_ordinary((static_cast<uint64_t>(w.v[2]) << 32) | w.v[3]);
  }
  for (int i = slot; i < o_.predictions; ++i) {
    positions[i] = 0;
    targets[i] = o_.ignore_index;
  }
  return slot;
}

}  // namespace ph
