#include "io/pair_dataset.h"

#include <algorithm>
#include <stdexcept>

#include "io/config.h"
#include "io/dataset.h"
#include "io/epoch_permutation.h"

namespace ph {

namespace {

void check_special(const char* name, int32_t id, int vocab_size) {
  if (id < 0 || id >= vocab_size) {
    throw std::invalid_argument(std::string("PairDataset: the ") + name + " id " +
                                std::to_string(id) + " is outside the vocabulary of " +
                                std::to_string(vocab_size));
  }
}

}  // namespace

PairDataset::PairDataset(const std::vector<std::string>& patterns,
                         const PairDatasetOptions& options)
    : options_(options) {
  const int S = options.source_len, T = options.target_len;
  if (S < 2) {
    throw InputError("paired data: source length (model.src_seq_len) must be >= 2, got " +
                     std::to_string(S));
  }
  if (T < 2) {
    throw InputError("paired data: target length (model.seq_len) must be >= 2, got " +
                     std::to_string(T));
  }
  check_special("pad", options.pad, options.vocab_size);
  check_special("bos", options.bos, options.vocab_size);
  check_special("eos", options.eos, options.vocab_size);

  const std::vector<std::string> paths = expand_data_paths(patterns);
  files_.reserve(paths.size());
  pair_begin_.reserve(paths.size() + 1);
  pair_begin_.push_back(0);
  for (const std::string& path : paths) {
    files_.push_back(PairFile::open(path, options.vocab_size));
    pair_begin_.push_back(pair_begin_.back() + files_.back().size());
  }
  if (total_pairs() == 0)
    throw InputError("paired data: the files hold no pairs (" + files_named() + ")");

  // Pairs that do not fit: cropped, or left out of kept_ (built from the first drop on).
  uint64_t global = 0;
  for (const PairFile& f : files_) {
    for (uint64_t i = 0; i < f.size(); ++i, ++global) {
      const bool fits = f.source_length(i) + uint64_t{1} <= static_cast<uint64_t>(S) &&
                        f.target_length(i) + uint64_t{1} <= static_cast<uint64_t>(T);
      if (fits && dropped_ > 0) kept_.push_back(global);
      if (fits) continue;
      if (options.crop) {
        ++cropped_;
        continue;
      }
      if (dropped_++ == 0) {
        kept_.reserve(static_cast<size_t>(total_pairs() - 1));
        for (uint64_t g = 0; g < global; ++g) kept_.push_back(g);
      }
    }
  }
  num_pairs_ = total_pairs() - dropped_;
  if (num_pairs_ == 0) {
    throw InputError("paired data: all " + std::to_string(total_pairs()) + " pairs of " +
                     files_named() + " are too long for model.src_seq_len " + std::to_string(S) +
                     " and model.seq_len " + std::to_string(T) +
                     " (a source needs its ids + eos <= S, a target its ids + bos <= T); raise "
                     "them or set data.crop=true");
  }
  if (options.shuffle) {
    if (num_pairs_ > UINT32_MAX) {
      throw InputError("paired data has " + std::to_string(num_pairs_) +
                       " pairs; shuffling supports at most " + std::to_string(UINT32_MAX) +
                       " (data.shuffle=false)");
    }
    perm_.resize(static_cast<size_t>(num_pairs_));
  }
}

std::string PairDataset::files_named() const {
  std::string s = "'" + files_.front().path() + "'";
  if (files_.size() > 1) s += " and " + std::to_string(files_.size() - 1) + " more";
  return s;
}

std::string PairDataset::summary() const {
  std::string s = files_named() + ": " + std::to_string(num_pairs_) + " pairs";
  const std::string limits = " (longer than model.src_seq_len " +
                             std::to_string(options_.source_len) + " / model.seq_len " +
                             std::to_string(options_.target_len) + " with eos/bos)";
  if (dropped_ > 0) s += ", " + std::to_string(dropped_) + " dropped" + limits;
  if (cropped_ > 0) s += ", " + std::to_string(cropped_) + " cropped" + limits;
  return s;
}

std::pair<const PairFile*, uint64_t> PairDataset::locate(uint64_t k) const {
  const uint64_t global = dropped_ == 0 ? k : kept_[static_cast<size_t>(k)];
  const auto it = std::upper_bound(pair_begin_.begin(), pair_begin_.end(), global);
  const size_t file = static_cast<size_t>(it - pair_begin_.begin()) - 1;
  return {&files_[file], global - pair_begin_[file]};
}

uint64_t PairDataset::pair_of(uint64_t sample) {
  const uint64_t epoch = sample / num_pairs_;
  const uint64_t pos = sample % num_pairs_;
  if (!options_.shuffle) return pos;
  if (epoch != perm_epoch_) {
    epoch_permutation(options_.seed, epoch, perm_);
    perm_epoch_ = epoch;
  }
  return perm_[static_cast<size_t>(pos)];
}

void PairDataset::fill(uint64_t first_sample, int count, int32_t* source, int32_t* source_lengths,
                       int32_t* tokens, int32_t* targets) {
  const size_t S = static_cast<size_t>(options_.source_len);
  const size_t T = static_cast<size_t>(options_.target_len);
  for (int b = 0; b < count; ++b) {
    const auto [file, i] = locate(pair_of(first_sample + static_cast<uint64_t>(b)));
    const size_t m = std::min<size_t>(file->source_length(i), S - 1);
    const size_t n = std::min<size_t>(file->target_length(i), T - 1);
    int32_t* src = source + static_cast<size_t>(b) * S;
    file->read_source(i, m, src);
    src[m] = options_.eos;
    std::fill(src + m + 1, src + S, options_.pad);
    source_lengths[b] = static_cast<int32_t>(m + 1);

    int32_t* in = tokens + static_cast<size_t>(b) * T;
    int32_t* out = targets + static_cast<size_t>(b) * T;
    file->read_target(i, n, out);
    in[0] = options_.bos;
    std::copy(out, out + n, in + 1);
    std::fill(in + n + 1, in + T, options_.pad);
    out[n] = options_.eos;
    std::fill(out + n + 1, out + T, options_.ignore_index);
  }
}

void PairDataset::read_pair(uint64_t k, std::vector<int32_t>& source,
                            std::vector<int32_t>& target) const {
  const auto [file, i] = locate(k);
  source.resize(file->source_length(i));
  target.resize(file->target_length(i));
  file->read_source(i, source.size(), source.data());
  file->read_target(i, target.size(), target.data());
}

}  // namespace ph
