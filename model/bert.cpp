#include "model/bert.h"

#include <stdexcept>
#include <string>

#include "model/block_specs.h"

namespace ph {

namespace {

size_t sz(int64_t v) {
  return static_cast<size_t>(v);
}

EmbeddingSpec bert_embedding(const ModelConfig& c, int max_batch) {
  EmbeddingSpec e = embedding_spec(c, max_batch, c.seq_len, rng::kSiteEncoderEmbed);
  e.token_types = c.type_vocab_size;
  e.layer_norm = true;
  return e;
}

LayerSpec bert_layer(const ModelConfig& c, const ModelSetup& s) {
  LayerSpec l = layer_spec(c, s.max_batch, c.seq_len);
  l.stack = rng::DropoutStack::kEncoder;
  l.select_rows = s.pack_rows;
  return l;
}

int checked_predictions(const ModelConfig& c, const ModelSetup& s) {
  if (s.max_predictions < 1 || s.max_predictions > c.seq_len)
    throw std::logic_error("Bert: max_predictions " + std::to_string(s.max_predictions) +
                           " outside [1, seq_len " + std::to_string(c.seq_len) + "]");
  return s.max_predictions;
}

MlmHeadSpec mlm_spec(const ModelConfig& c, const ModelSetup& s, int Vp) {
  MlmHeadSpec m;
  m.C = c.d_model;
  m.V = c.vocab_size;
  m.Vp = Vp;
  m.activation = c.activation;
  m.ln_eps = c.layer_norm_eps;
  m.init_std = c.init_std;
  m.max_rows = s.max_batch * checked_predictions(c, s);
  return m;
}

void fail(const std::string& what) {
  throw std::logic_error("Bert: " + what);
}

}  // namespace

Bert::Bert(Backend& be, const ModelConfig& cfg, const ModelSetup& setup)
    : Model(be, cfg, setup),
      embed_(core_, "", bert_embedding(cfg, setup.max_batch)),
      stack_(core_, "", cfg.n_layers, bert_layer(cfg, setup)),
      mlm_(core_, embed_.wte(), mlm_spec(cfg, setup, embed_.padded_vocab())) {
  if (cfg.type_vocab_size < 1) fail("model.type_vocab_size must be at least 1");
  if (cfg.sentence_head != SentenceHead::kNone)
    sentence_ =
        std::make_unique<SentenceClassifier>(core_, cfg.d_model, cfg.init_std, setup.max_batch);
  const size_t C = sz(cfg.d_model), B = sz(setup.max_batch);
  const size_t rows = B * sz(cfg.seq_len), slots = B * sz(setup.max_predictions);
  core_.plan().own(&gathered_, slots * C);
  core_.plan().own(&cls_, B * C);
  core_.plan().shared(&dgathered_, "mlm.dx", slots * C);
  core_.plan().shared(&dstream_, "stream.d", rows * C);
  core_.plan().shared(&dout_, "branch.dy", rows * C);
  finish_construction();
  embed_.prepare();
  types_ = DeviceBuffer<int32_t>(be, rows);
  lengths_ = DeviceBuffer<int32_t>(be, B);
  rows_ = DeviceBuffer<int32_t>(be, slots);
  cls_rows_ = DeviceBuffer<int32_t>(be, B);
  labels_ = DeviceBuffer<int32_t>(be, B);
  if (setup.pack_rows) {
    select_maps_ = DeviceBuffer<int32_t>(be, 2 * rows);
    host_select_maps_.resize(2 * rows);
  }
  host_rows_.resize(slots);
  host_cls_rows_.resize(B);
  host_labels_.resize(B);
  host_logits_.resize(B * SentenceClassifier::kClasses);
  host_losses_.resize(B);
}

// The slots' rows of the stack output: a counted slot (target not kIgnoreIndex) reads its
// position; the others keep theirs where it is free and otherwise take a free one, so that the
// rows of a micro-batch are distinct (scatter_add_rows needs it; an unused slot's gradient is 0).
// With ModelSetup::pack_rows the stack's last layer computes those rows and [CLS] (with a
// sentence head) only (select_rows), and the heads read them by their place among them.
void Bert::upload_side(const Batch& b) {
  const size_t BT = sz(b.B) * sz(b.T), BP = sz(b.B) * sz(b.P);
  if (b.types.size() < BT || b.lengths.size() < sz(b.B))
    fail("a batch needs types [B*T] and lengths [B]");
  if (b.P < 1 || b.P > setup_.max_predictions || b.mlm_positions.size() < BP)
    fail("a batch needs 1.." + std::to_string(setup_.max_predictions) +
         " prediction slots, got P = " + std::to_string(b.P) + " with " +
         std::to_string(b.mlm_positions.size()) + " positions");
  for (size_t i = 0; i < BT; ++i)
    if (b.types[i] < 0 || b.types[i] >= cfg_.type_vocab_size)
      fail("token type " + std::to_string(b.types[i]) + " outside [0, " +
           std::to_string(cfg_.type_vocab_size) + ")");
  const bool targets = b.targets.size() >= BP;
  std::vector<char> taken(sz(b.T));
  for (int s = 0; s < b.B; ++s) {
    const int32_t len = b.lengths[sz(s)];
    if (len < 1 || len > b.T) fail("length " + std::to_string(len) + " outside [1, T]");
    std::fill(taken.begin(), taken.end(), 0);
    const size_t k0 = sz(s) * sz(b.P);
    for (int pass = 0; pass < 2; ++pass)
      for (size_t k = k0; k < k0 + sz(b.P); ++k) {
        const bool counted = targets && b.targets[k] != kIgnoreIndex;
        if (counted != (pass == 0)) continue;
        int32_t pos = b.mlm_positions[k];
        if (pos < 0 || pos >= b.T)
          fail("prediction position " + std::to_string(pos) + " outside [0, T)");
        if (taken[sz(pos)]) {
          if (counted) fail("prediction position " + std::to_string(pos) + " repeated in a sample");
          pos = 0;
          while (taken[sz(pos)]) ++pos;
        }
        taken[sz(pos)] = 1;
        host_rows_[k] = s * b.T + pos;
      }
    host_cls_rows_[sz(s)] = s * b.T;  // [CLS]: position 0
  }
  if (setup_.pack_rows) select_rows(b);
  backend().upload(types_.data(), b.types.data(), BT * sizeof(int32_t));
  backend().upload(lengths_.data(), b.lengths.data(), sz(b.B) * sizeof(int32_t));
  backend().upload(rows_.data(), host_rows_.data(), BP * sizeof(int32_t));
  backend().upload(cls_rows_.data(), host_cls_rows_.data(), sz(b.B) * sizeof(int32_t));
}

// The rows the heads read, in order (pack, then unpack), and the heads' rows renumbered to
// their places among them.
void Bert::select_rows(const Batch& b) {
  const size_t BT = sz(b.B) * sz(b.T), BP = sz(b.B) * sz(b.P);
  int32_t* pack = host_select_maps_.data();
  int32_t* unpack = pack + BT;
  std::fill(unpack, unpack + BT, 0);  // marks, which pack_maps reads before overwriting
  for (size_t k = 0; k < BP; ++k) unpack[host_rows_[k]] = 1;
  if (sentence_)
    for (size_t s = 0; s < sz(b.B); ++s) unpack[host_cls_rows_[s]] = 1;
  const int N = pack_maps(pack, static_cast<int>(BT), [&](int r) { return unpack[r] != 0; });
  for (size_t k = 0; k < BP; ++k) host_rows_[k] = unpack[host_rows_[k]];
  for (size_t s = 0; s < sz(b.B); ++s) host_cls_rows_[s] = unpack[host_cls_rows_[s]];
  backend().upload(select_maps_.data(), pack, sz(N) * sizeof(int32_t));
  backend().upload(select_maps_.data() + BT, unpack, BT * sizeof(int32_t));
  selected_ = Packing{N, select_maps_.data(), select_maps_.data() + BT, nullptr};
}

void Bert::sentence_forward(const Batch& b) {
  const size_t B = sz(b.B);
  const bool labelled = b.sentence_labels.size() >= B;
  for (size_t s = 0; s < B; ++s) {
    const int32_t label = labelled ? b.sentence_labels[s] : kIgnoreIndex;
    if (label != kIgnoreIndex && (label < 0 || label >= SentenceClassifier::kClasses))
      fail("sentence label " + std::to_string(label) + " is neither 0, 1 nor ignored");
    host_labels_[s] = label;
  }
  backend().upload(labels_.data(), host_labels_.data(), B * sizeof(int32_t));
  backend().gather_rows(cls_, out_, cls_rows_.data(), b.B, cfg_.d_model);
  sentence_->forward(cls_, labels_.data(), b.B);
  backend().download(host_logits_.data(), sentence_->logits(),
                     B * SentenceClassifier::kClasses * sizeof(float));
  backend().download(host_losses_.data(), sentence_->losses(), B * sizeof(float));
  for (size_t s = 0; s < B; ++s) {
    if (host_labels_[s] == kIgnoreIndex) continue;
    const int guess = host_logits_[2 * s + 1] > host_logits_[2 * s] ? 1 : 0;
    stats_.loss_sum += host_losses_[s];
    stats_.correct += guess == host_labels_[s] ? 1 : 0;
    ++stats_.counted;
  }
}

const Pass* Bert::output_pass(const Pass& pass) {
  if (!setup_.pack_rows) return nullptr;
  out_pass_ = pass;
  out_pass_.packed = selected_;
  return &out_pass_;
}

void Bert::forward(const Batch& b, const DropoutContext& d) {
  const Pass pass = pass_of(b, d);
  tokens_ = upload_tokens(b);
  upload_side(b);
  const float* x = embed_.forward(tokens_, types_.data(), pass);
  const Pass* out = output_pass(pass);
  out_ = stack_.forward(x, pass, lengths_.data(), nullptr, out);
  output_rows_ = output_of(pass, out).rows();
  backend().gather_rows(gathered_, out_, rows_.data(), b.B * b.P, cfg_.d_model);
  mlm_.forward(gathered_, b.B * b.P);
  stats_ = SentenceStats{};
  if (sentence_) sentence_forward(b);
}

void Bert::backward(const Batch& b, const DropoutContext& d) {
  const Pass pass = pass_of(b, d);
  const int C = cfg_.d_model;
  const Pass* out = output_pass(pass);  // the forward's (its selection is kept)
  mlm_.backward(dgathered_, gathered_, b.B * b.P);
  backend().zero(dout_, sz(output_of(pass, out).rows()) * sz(C) * sizeof(float));
  backend().scatter_add_rows(dout_, dgathered_, rows_.data(), b.B * b.P, C);
  core_.ready().release(mlm_.params(), core_.table());
  if (sentence_) {
    sentence_->backward(dgathered_, cls_, labels_.data(), b.B, b.sentence_dloss);
    backend().scatter_add_rows(dout_, dgathered_, cls_rows_.data(), b.B, C);
    core_.ready().release(sentence_->params(), core_.table());
  }
  stack_.backward(dstream_, dout_, pass, lengths_.data(), nullptr, out);
  embed_.backward(dstream_, tokens_, types_.data(), pass);
  core_.ready().release(embed_.params(), core_.table());
}

}  // namespace ph
