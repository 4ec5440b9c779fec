#include "model/encdec_decoder.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace ph {

namespace {

size_t sz(int64_t v) {
  return static_cast<size_t>(v);
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error("EncDecDecoder: " + what);
}

int checked_slots(const EncDec& model, int max_batch, int max_sources, int max_beams) {
  const int T = model.config().seq_len;
  require(max_sources >= 1 && max_sources <= max_batch && max_beams >= 1 &&
              static_cast<int64_t>(max_sources) * max_beams <= static_cast<int64_t>(max_batch) * T,
          std::to_string(max_sources) + " sources x " + std::to_string(max_beams) +
              " beams do not fit a model of micro-batches of " + std::to_string(max_batch) + " x " +
              std::to_string(T));
  return max_sources * max_beams;
}

}  // namespace

std::unique_ptr<IncrementalDecoder> EncDec::incremental_decoder(int max_sources, int max_beams,
                                                                CrossFolding folding) {
  return std::make_unique<EncDecDecoder>(*this, max_sources, max_beams, folding);
}

EncDecDecoder::EncDecDecoder(EncDec& model, int max_sources, int max_beams, CrossFolding folding)
    : m_(model),
      max_sources_(max_sources),
      max_beams_(max_beams),
      T_(model.config().seq_len),
      folding_(folding),
      kv_width_(2 * sz(model.config().d_model) / sz(model.tp().size)),
      self_(model.backend(), model.decoder_.depth(),
            checked_slots(model, model.setup_.max_batch, max_sources, max_beams), T_, kv_width_),
      log_softmax_(model, max_sources * max_beams) {
  Backend& be = model.backend();
  require(folding != CrossFolding::kAlways || be.folds_cross_attention(),
          "the " + be.describe() + " backend does not fold cross-attention");
  weights_ = be.make_weight_store();
  const size_t layer_memory = sz(max_sources) * sz(model.S_) * kv_width_;
  const int L = model.decoder_.depth();
  cross_kv_ = DeviceBuffer<float>(be, sz(L) * layer_memory);
  folded_layers_.assign(sz(L), nullptr);
  for (int l = 0; l < L; ++l) {
    cross_.push_back(cross_kv_.data() + sz(l) * layer_memory);
    self_.layers()[sz(l)].cross = cross_.back();
  }
  source_ = DeviceBuffer<int32_t>(be, sz(max_sources) * sz(model.S_));
  lengths_ = DeviceBuffer<int32_t>(be, sz(max_sources));
  folded_source_ = DeviceBuffer<int32_t>(be, sz(max_sources));
  tokens_ = DeviceBuffer<int32_t>(be, sz(max_sources) * sz(max_beams));
  host_source_.resize(sz(max_sources) * sz(model.S_));
  host_lengths_.resize(sz(max_sources));
  host_folded_source_.resize(sz(max_sources));
  prev_slot_.resize(sz(max_sources) * sz(max_beams));
  first_tokens_.resize(sz(max_sources));
}

void EncDecDecoder::start(const int32_t* source, const int32_t* lengths, int n, int S, int beams) {
  require(n >= 1 && n <= max_sources_ && S >= 1 && S <= m_.S_ && beams >= 1 && beams <= max_beams_,
          "start of " + std::to_string(n) + " sources of " + std::to_string(S) + " positions x " +
              std::to_string(beams) + " beams is outside the decoder's limits");
  for (int j = 0; j < n; ++j) {
    require(lengths[j] >= 1 && lengths[j] <= S, "source length " + std::to_string(lengths[j]) +
                                                    " outside [1, " + std::to_string(S) + "]");
    for (int s = 0; s < S; ++s) {
      const size_t k = sz(j) * sz(S) + sz(s);
      host_source_[k] = s < lengths[j] ? source[k] : 0;  // padding is never attended
    }
  }
  Backend& be = m_.backend();
  const UseWeightStore use(be, weights_.get());
  be.upload(source_.data(), host_source_.data(), sz(n) * sz(S) * sizeof(int32_t));
  std::copy(lengths, lengths + n, host_lengths_.begin());
  be.upload(lengths_.data(), lengths, sz(n) * sizeof(int32_t));
  Pass enc;  // no dropout
  enc.B = n;
  enc.T = S;
  mem_.x = m_.encoder_.forward(m_.enc_embed_.forward(source_.data(), nullptr, enc), enc,
                               lengths_.data(), nullptr);
  mem_.Tk = S;
  mem_.key_len = lengths_.data();
  // Folding (model/attention.h): each layer's folded memory, in a buffer that grows to the
  // largest start so far; the steps read it instead of the keys and values.
  const int hs = m_.config().d_model / m_.config().n_heads;
  folded_ =
      folding_ == CrossFolding::kAlways ||
      (folding_ == CrossFolding::kAuto && be.folds_cross_attention() && folding_pays(S, beams, hs));
  const int L = m_.decoder_.depth();
  const size_t layer_folded = folded_ ? m_.decoder_.folded_floats(n, S) : 0;
  if (layer_folded * sz(L) > folded_memory_.size())
    folded_memory_ = DeviceBuffer<float>(be, layer_folded * sz(L));
  for (int l = 0; l < L; ++l) {
    folded_layers_[sz(l)] = folded_ ? folded_memory_.data() + sz(l) * layer_folded : nullptr;
    self_.layers()[sz(l)].folded = folded_layers_[sz(l)];
  }
  folded_sources_ = n;
  std::iota(host_folded_source_.begin(), host_folded_source_.begin() + n, 0);
  be.upload(folded_source_.data(), host_folded_source_.data(), sz(n) * sizeof(int32_t));
  m_.decoder_.memory_kv(cross_, mem_, n, folded_ ? &folded_layers_ : nullptr);
  n_ = n;
  beams_ = beams;
  pos_ = 0;
  prev_n_ = n * beams;
  std::iota(prev_slot_.begin(), prev_slot_.begin() + prev_n_, 0);
}

void EncDecDecoder::step(const int32_t* tokens, const int32_t* parents, float* logprobs) {
  require(n_ > 0, "step before start");
  require(pos_ < T_, "step " + std::to_string(pos_ + 1) + " exceeds the model's " +
                         std::to_string(T_) + " target positions");
  // Position 0: every slot of a source holds the same empty hypothesis; when they also read
  // the same token (a search starts every slot at bos), one row per source runs (a quarter of
  // the rows with beam 4) and its log-probabilities are copied to the source's other slots;
  // the next step's gather reads each slot's parent from its source's row.
  bool first = pos_ == 0 && beams_ > 1;
  for (int i = 0; first && i < n_ * beams_; ++i)
    first = tokens[sz(i)] == tokens[sz(i / beams_) * sz(beams_)];
  const int beams = first ? 1 : beams_;
  const int slots = n_ * beams;
  if (first)
    for (int j = 0; j < n_; ++j) first_tokens_[sz(j)] = tokens[sz(j) * sz(beams_)];
  const UseWeightStore use(m_.backend(), weights_.get(), /*decoding_step=*/true);
  const int32_t* gather = self_.gather(parents, slots, pos_, beams, prev_slot_.data(), prev_n_);
  m_.backend().upload(tokens_.data(), first ? first_tokens_.data() : tokens,
                      sz(slots) * sizeof(int32_t));
  Pass pass;  // no dropout
  pass.B = slots;
  pass.T = 1;
  DecodeStep s;
  s.n = slots;
  s.pos = pos_;
  s.prev_n = prev_n_;
  s.gather = gather;
  s.beams = beams;
  s.mem = &mem_;
  s.folded_sources = folded_sources_;
  s.folded_source = folded_source_.data();
  const float* x = m_.dec_embed_.forward(tokens_.data(), nullptr, pass, pos_);
  m_.head_.forward(m_.decoder_.step(x, s, self_.layers()), slots);
  log_softmax_(slots, logprobs);
  ++pos_;
  prev_n_ = slots;
  if (first) {
    const size_t V = sz(vocab_size());
    for (int j = n_ - 1; j >= 0; --j)  // source j's row to its slots, from the last down
      for (int b = beams_ - 1; b >= 0; --b) {
        const size_t slot = sz(j) * sz(beams_) + sz(b);
        if (slot != sz(j)) std::copy_n(logprobs + sz(j) * V, V, logprobs + slot * V);
        prev_slot_[slot] = j;
      }
    return;
  }
  std::iota(prev_slot_.begin(), prev_slot_.begin() + slots, 0);
}

void EncDecDecoder::retain(const int32_t* keep, int m) {
  require(n_ > 0, "retain before start");
  require(m >= 1 && m <= n_,
          "retain of " + std::to_string(m) + " of " + std::to_string(n_) + " sources");
  for (int i = 0; i < m; ++i)
    require(keep[i] >= i && keep[i] < n_ && (i == 0 || keep[i] > keep[i - 1]),
            "retain: the kept sources must be increasing indices of the current ones");
  if (m == n_) return;  // all kept: keep is the identity
  Backend& be = m_.backend();
  const size_t block = sz(mem_.Tk) * kv_width_;  // one source's keys and values in a layer
  for (int i = 0; i < m; ++i) {
    const int j = keep[i];  // j >= i: no block is read after it is overwritten
    if (j == i) continue;
    if (!folded_)  // folded, the steps read the folds (where host_folded_source_ says), not kv
      for (float* kv : cross_)
        be.copy(kv + sz(i) * block, kv + sz(j) * block, block * sizeof(float));
    host_folded_source_[sz(i)] = host_folded_source_[sz(j)];
    host_lengths_[sz(i)] = host_lengths_[sz(j)];
    for (int b = 0; b < beams_; ++b)
      prev_slot_[sz(i * beams_ + b)] = prev_slot_[sz(j * beams_ + b)];
  }
  be.upload(lengths_.data(), host_lengths_.data(), sz(m) * sizeof(int32_t));
  if (folded_)
    be.upload(folded_source_.data(), host_folded_source_.data(), sz(m) * sizeof(int32_t));
  n_ = m;
}

}  // namespace ph
