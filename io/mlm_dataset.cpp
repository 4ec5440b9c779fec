#include "io/mlm_dataset.h"

#include <algorithm>

#include "io/dataset.h"
#include "io/epoch_permutation.h"
#include "kernels/common/rng_streams.h"

namespace ph {

namespace {

// Calls add(begin, length) for every run of tokens between eot tokens of ids[0..n).
template <typename Id, typename Add>
void for_each_document(const Id* ids, uint64_t n, int32_t eot, const Add& add) {
  uint64_t begin = 0;
  for (uint64_t i = 0; i < n; ++i) {
    if (static_cast<int64_t>(ids[i]) != eot) continue;
    if (i > begin) add(begin, i - begin);
    begin = i + 1;
  }
  if (n > begin) add(begin, n - begin);
}

std::string name_files(const std::vector<std::string>& paths) {
  std::string s = "'" + paths.front() + "'";
  if (paths.size() > 1) s += " and " + std::to_string(paths.size() - 1) + " more";
  return s;
}

}  // namespace

MlmDataset::MlmDataset(const std::vector<std::string>& patterns, const MlmDatasetOptions& options,
                       MlmMasking masking)
    : o_(options), masking_(std::move(masking)) {
  const bool two = has_sentence_labels();
  const int least = two ? 5 : 3;
  if (o_.seq_len < least) {
    throw InputError("MLM data: seq_len " + std::to_string(o_.seq_len) + " is too short for " +
                     (two ? "[CLS] A [SEP] B [SEP] (at least 5)" : "[CLS] A [SEP] (at least 3)"));
  }
  for (const int32_t id : {o_.cls, o_.sep, o_.pad}) {
    if (id < 0 || id >= o_.vocab_size)
      throw InputError("MLM data: the special ids ([CLS] " + std::to_string(o_.cls) + ", [SEP] " +
                       std::to_string(o_.sep) + ", [PAD] " + std::to_string(o_.pad) +
                       ") must be in [0, model.vocab_size " + std::to_string(o_.vocab_size) + ")");
  }
  L_ = o_.seq_len - (two ? 3 : 2);
  const uint64_t L = static_cast<uint64_t>(L_);
  const uint64_t shortest = two ? 2 : 1;
  const std::vector<std::string> paths = expand_data_paths(patterns);
  chunk_begin_.push_back(0);
  for (const std::string& path : paths) {
    Shard shard = Shard::open(path, o_.vocab_size);
    const uint32_t index = static_cast<uint32_t>(shards_.size());
    const auto add = [&](uint64_t begin, uint64_t length) {
      const uint64_t chunks = length / L + (length % L >= shortest ? 1 : 0);
      if (chunks == 0) return;
      docs_.push_back(Document{index, begin, length});
      chunk_begin_.push_back(chunk_begin_.back() + chunks);
    };
    if (o_.eot < 0)
      add(0, shard.size());
    else if (shard.width() == TokenWidth::U16)
      for_each_document(shard.tokens(), shard.size(), o_.eot, add);
    else
      for_each_document(shard.tokens32(), shard.size(), o_.eot, add);
    shards_.push_back(std::move(shard));
  }
  if (num_chunks() == 0) {
    throw InputError("MLM data: " + name_files(paths) + " holds no document of at least " +
                     std::to_string(shortest) + " token" + (two ? "s" : "") +
                     ", which a sample needs (one segment: 1, two: 2); documents are separated "
                     "by data.eot_token");
  }
  if (o_.sentence_head == SentenceHead::kNsp && num_chunks() < 2) {
    throw InputError(
        "MLM data: next-sentence prediction needs a second chunk to draw random "
        "segments from, but " +
        name_files(paths) + " holds one chunk");
  }
  if (o_.shuffle) {
    if (num_chunks() > UINT32_MAX) {
      throw InputError("MLM data has " + std::to_string(num_chunks()) +
                       " chunks; shuffling supports at most " + std::to_string(UINT32_MAX) +
                       " (data.shuffle=false)");
    }
    perm_.resize(num_chunks());
  }
  chunk_.resize(static_cast<size_t>(L_));
}

uint64_t MlmDataset::chunk_of(uint64_t sample) {
  const uint64_t n = num_chunks();
  if (!o_.shuffle) return sample % n;
  const uint64_t epoch = sample / n;
  if (epoch != perm_epoch_) {
    epoch_permutation(o_.seed, epoch, perm_);
    perm_epoch_ = epoch;
  }
  return perm_[sample % n];
}

int MlmDataset::read_chunk(uint64_t c, int32_t* out) const {
  const size_t d = static_cast<size_t>(
      std::upper_bound(chunk_begin_.begin(), chunk_begin_.end(), c) - chunk_begin_.begin() - 1);
  const Document& doc = docs_[d];
  const uint64_t offset = (c - chunk_begin_[d]) * static_cast<uint64_t>(L_);
  const uint64_t m = std::min(static_cast<uint64_t>(L_), doc.length - offset);
  shards_[doc.shard].read(doc.begin + offset, m, out);
  return static_cast<int>(m);
}

int MlmDataset::read_half(uint64_t c, bool second, int32_t* out) {
  const int m = read_chunk(c, chunk_.data());
  const int a = (m + 1) / 2;
  const int begin = second ? a : 0, end = second ? m : a;
  std::copy(chunk_.data() + begin, chunk_.data() + end, out);
  return end - begin;
}

int MlmDataset::assemble(uint64_t sample, uint64_t chunk, int32_t* t, int32_t* y, int32_t* label) {
  const int T = o_.seq_len;
  int n = 0;
  t[n++] = o_.cls;
  if (!has_sentence_labels()) {
    n += read_chunk(chunk, t + n);
    t[n++] = o_.sep;
    std::fill(y, y + T, 0);
  } else {
    const Philox4 w = philox4x32(static_cast<uint32_t>(sample), static_cast<uint32_t>(sample >> 32),
                                 rng::kMlmSegmentsA, 0, static_cast<uint32_t>(o_.seed),
                                 static_cast<uint32_t>(o_.seed >> 32));
    *label = static_cast<int32_t>(w.v[0] & 1u);
    // t[1..] holds A then B; with sop's label the halves are read in the other order.
    const bool swap = *label == 1 && o_.sentence_head == SentenceHead::kSop;
    uint64_t second = chunk;
    if (*label == 1 && o_.sentence_head == SentenceHead::kNsp) {
      const uint64_t N = num_chunks();
      const uint64_t bits = (static_cast<uint64_t>(w.v[1]) << 32) | w.v[2];
      second = (chunk + 1 + scale_bits(bits, N - 1)) % N;
    }
    n += read_half(chunk, swap, t + n);
    t[n++] = o_.sep;
    const int first_end = n;
    n += read_half(second, !swap, t + n);
    t[n++] = o_.sep;
    std::fill(y, y + first_end, 0);
    std::fill(y + first_end, y + n, 1);
    std::fill(y + n, y + T, 0);
  }
  std::fill(t + n, t + T, o_.pad);
  return n;
}

void MlmDataset::fill(uint64_t first, int count, const MlmRows& rows) {
  const size_t T = static_cast<size_t>(o_.seq_len);
  const size_t P = static_cast<size_t>(predictions());
  for (int i = 0; i < count; ++i) {
    const size_t r = static_cast<size_t>(i);
    const uint64_t s = first + r;
    int32_t label = 0;
    int32_t* t = rows.tokens + r * T;
    const int n = assemble(s, chunk_of(s), t, rows.types + r * T, &label);
    rows.lengths[r] = n;
    if (rows.sentence_labels != nullptr) rows.sentence_labels[r] = label;
    masking_.apply(o_.seed, s, t, n, rows.positions + r * P, rows.targets + r * P);
  }
}

}  // namespace ph
