#include "io/dataset.h"

#include <glob.h>

#include <algorithm>

#include "io/config.h"
#include "io/epoch_permutation.h"

namespace ph {

std::vector<std::string> expand_data_paths(const std::vector<std::string>& patterns) {
  if (patterns.empty()) throw InputError("no data files given");
  std::vector<std::string> paths;
  for (const std::string& pattern : patterns) {
    glob_t g{};
    const int rc = ::glob(pattern.c_str(), 0, nullptr, &g);
    if (rc == 0) {
      std::vector<std::string> matches(g.gl_pathv, g.gl_pathv + g.gl_pathc);
      std::sort(matches.begin(), matches.end());
      paths.insert(paths.end(), matches.begin(), matches.end());
    }
    ::globfree(&g);
    if (rc == GLOB_NOMATCH) throw InputError("data path '" + pattern + "' matches no file");
    if (rc != 0) throw InputError("data path '" + pattern + "': glob failed");
  }
  return paths;
}

TokenDataset::TokenDataset(const std::vector<std::string>& patterns, int vocab_size, int seq_len,
                           bool shuffle, uint64_t seed)
    : T_(seq_len), shuffle_(shuffle), seed_(seed) {
  if (seq_len < 1) {
    throw InputError("sequence length must be >= 1, got " + std::to_string(seq_len));
  }
  const std::vector<std::string> paths = expand_data_paths(patterns);
  const uint64_t T = static_cast<uint64_t>(T_);
  shards_.reserve(paths.size());
  window_begin_.reserve(paths.size() + 1);
  window_begin_.push_back(0);
  for (const std::string& path : paths) {
    Shard shard = Shard::open(path, vocab_size);
    const uint64_t n = shard.size();
    if (n < T + 1) {
      throw InputError("data shard '" + path + "' has " + std::to_string(n) +
                       " tokens, too short for one sequence of T+1 = " + std::to_string(T + 1) +
                       " tokens");
    }
    num_tokens_ += n;
    window_begin_.push_back(window_begin_.back() + (n - 1) / T);
    shards_.push_back(std::move(shard));
  }
  window_.resize(static_cast<size_t>(T) + 1);
  if (shuffle_) {
    if (num_windows() > UINT32_MAX) {
      throw InputError("data has " + std::to_string(num_windows()) +
                       " windows; shuffling supports at most " + std::to_string(UINT32_MAX) +
                       " (use longer sequences or data.shuffle=false)");
    }
    perm_.resize(num_windows());
  }
}

void TokenDataset::read_window(uint64_t w, int32_t* out) const {
  // The shard whose window range [begin, next begin) contains w.
  const auto it = std::upper_bound(window_begin_.begin(), window_begin_.end(), w);
  const size_t shard = static_cast<size_t>(it - window_begin_.begin()) - 1;
  const uint64_t k = w - window_begin_[shard];
  shards_[shard].read(k * static_cast<uint64_t>(T_), static_cast<size_t>(T_) + 1, out);
}

void TokenDataset::build_permutation(uint64_t epoch) {
  epoch_permutation(seed_, epoch, perm_);
  perm_epoch_ = epoch;
}

uint64_t TokenDataset::window_of(uint64_t sample) {
  const uint64_t n = num_windows();
  const uint64_t epoch = sample / n;
  const uint64_t pos = sample % n;
  if (!shuffle_) return pos;
  if (epoch != perm_epoch_) build_permutation(epoch);
  return perm_[pos];
}

void TokenDataset::fill(uint64_t first_sample, int count, int32_t* inputs, int32_t* targets) {
  const size_t T = static_cast<size_t>(T_);
  for (int i = 0; i < count; ++i) {
    read_window(window_of(first_sample + static_cast<uint64_t>(i)), window_.data());
    std::copy(window_.begin(), window_.begin() + T, inputs + static_cast<size_t>(i) * T);
    std::copy(window_.begin() + 1, window_.end(), targets + static_cast<size_t>(i) * T);
  }
}

}  // namespace ph
