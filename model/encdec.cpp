#include "model/encdec.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "model/block_specs.h"

namespace ph {

namespace {

size_t sz(int64_t v) {
  return static_cast<size_t>(v);
}

LayerSpec encoder_layer(const ModelConfig& c, const ModelSetup& setup) {
  LayerSpec l = layer_spec(c, setup.max_batch, c.source_len());
  l.stack = rng::DropoutStack::kEncoder;
  l.packed_rows = setup.pack_rows;
  return l;
}

LayerSpec decoder_layer(const ModelConfig& c, const ModelSetup& setup) {
  LayerSpec l = layer_spec(c, setup.max_batch, c.seq_len);
  l.packed_rows = setup.pack_rows;
  l.causal = true;
  l.cross = true;
  l.Tk_max = c.source_len();
  return l;
}

EmbeddingSpec target_embedding(const ModelConfig& c, int max_batch, int source_wte) {
  EmbeddingSpec e = embedding_spec(c, max_batch, c.seq_len, rng::kSiteEmbed);
  if (c.share_embeddings == ShareEmbeddings::kAll) e.tied_wte = source_wte;
  return e;
}

}  // namespace

EncDec::EncDec(Backend& be, const ModelConfig& cfg, const ModelSetup& setup)
    : Model(be, cfg, setup),
      S_(cfg.source_len()),
      enc_embed_(core_, "enc.", embedding_spec(cfg, setup.max_batch, S_, rng::kSiteEncoderEmbed)),
      encoder_(core_, "enc.", cfg.encoder_depth(), encoder_layer(cfg, setup)),
      dec_embed_(core_, "dec.", target_embedding(cfg, setup.max_batch, enc_embed_.wte())),
      decoder_(core_, "dec.", cfg.decoder_depth(), decoder_layer(cfg, setup)),
      head_(core_, cfg.share_embeddings == ShareEmbeddings::kNone ? -1 : dec_embed_.wte(),
            "lm_head", cfg.d_model, cfg.vocab_size, dec_embed_.padded_vocab(), cfg.init_std,
            setup.max_batch * cfg.seq_len) {
  const size_t C = sz(cfg.d_model);
  const size_t src_rows = sz(setup.max_batch) * sz(S_);
  const size_t rows = sz(setup.max_batch) * sz(std::max(S_, cfg.seq_len));
  core_.plan().own(&dmem_, src_rows * C);
  core_.plan().shared(&dstream_, "stream.d", rows * C);
  core_.plan().shared(&dhead_, "branch.dy", rows * C);
  if (setup.pack_rows) {
    core_.plan().own(&enc_in_, src_rows * C);
    core_.plan().own(&dec_in_, sz(setup.max_batch) * sz(cfg.seq_len) * C);
    core_.plan().shared(&dpad_, "pad.stream", rows * C);
  }
  finish_construction();
  enc_embed_.prepare();
  dec_embed_.prepare();
  source_ = DeviceBuffer<int32_t>(be, src_rows);
  lengths_ = DeviceBuffer<int32_t>(be, sz(setup.max_batch));
  host_source_.resize(src_rows);
  if (setup.pack_rows) {
    const size_t tgt_rows = sz(setup.max_batch) * sz(cfg.seq_len);
    src_maps_ = DeviceBuffer<int32_t>(be, 2 * src_rows);
    tgt_maps_ = DeviceBuffer<int32_t>(be, 2 * tgt_rows);
    tgt_lengths_ = DeviceBuffer<int32_t>(be, sz(setup.max_batch));
    host_src_maps_.resize(2 * src_rows);
    host_tgt_maps_.resize(2 * tgt_rows);
  }
}

int computed_target_positions(const Batch& b, int i) {
  int n = b.T;
  while (n > 0 && b.targets[sz(i) * sz(b.T) + sz(n - 1)] == kIgnoreIndex) --n;
  return n;
}

void EncDec::pack(const Batch& b) {
  const size_t ns = sz(b.B) * sz(b.S), nt = sz(b.B) * sz(b.T);
  std::vector<int32_t> len(b.source_lengths.begin(), b.source_lengths.begin() + b.B);
  const int Ns = pack_maps(host_src_maps_.data(), b.B * b.S,
                           [&](int r) { return r % b.S < len[sz(r / b.S)]; });
  for (int i = 0; i < b.B; ++i) len[sz(i)] = computed_target_positions(b, i);
  const int Nt = pack_maps(host_tgt_maps_.data(), b.B * b.T,
                           [&](int r) { return r % b.T < len[sz(r / b.T)]; });
  packed_targets_.clear();
  for (int k = 0; k < Nt; ++k) packed_targets_.push_back(b.targets[sz(host_tgt_maps_[sz(k)])]);
  // Both halves travel: pack (its first N entries) and unpack.
  backend().upload(src_maps_.data(), host_src_maps_.data(), sz(Ns) * sizeof(int32_t));
  backend().upload(src_maps_.data() + ns, host_src_maps_.data() + ns, ns * sizeof(int32_t));
  backend().upload(tgt_maps_.data(), host_tgt_maps_.data(), sz(Nt) * sizeof(int32_t));
  backend().upload(tgt_maps_.data() + nt, host_tgt_maps_.data() + nt, nt * sizeof(int32_t));
  backend().upload(tgt_lengths_.data(), len.data(), sz(b.B) * sizeof(int32_t));
  enc_.packed = Packing{Ns, src_maps_.data(), src_maps_.data() + ns, lengths_.data()};
  dec_.packed = Packing{Nt, tgt_maps_.data(), tgt_maps_.data() + nt, tgt_lengths_.data()};
}

const float* EncDec::unpacked(const float* d, const Pass& pass) {
  if (!pass.is_packed()) return d;
  backend().gather_rows(dpad_, d, pass.packed.unpack, pass.padded_rows(), cfg_.d_model);
  return dpad_;
}

void EncDec::check_source(const Batch& b) const {
  if (b.S < 1 || b.S > S_ || b.source.size() < sz(b.B) * sz(b.S) ||
      b.source_lengths.size() < sz(b.B))
    throw std::logic_error("EncDec: a batch needs a source side of 1.." + std::to_string(S_) +
                           " positions, got S = " + std::to_string(b.S) + " with " +
                           std::to_string(b.source.size()) + " tokens and " +
                           std::to_string(b.source_lengths.size()) + " lengths");
  for (int i = 0; i < b.B; ++i) {
    const int32_t n = b.source_lengths[sz(i)];
    if (n < 1 || n > b.S)
      throw std::logic_error("EncDec: source length " + std::to_string(n) + " of sample " +
                             std::to_string(i) + " outside [1, " + std::to_string(b.S) + "]");
  }
}

void EncDec::forward(const Batch& batch, const DropoutContext& d) {
  enc_ = dec_ = pass_of(batch, d);
  enc_.T = batch.S;
  tokens_ = upload_tokens(batch);
  check_source(batch);
  // Padding is never attended; token 0 keeps its lookup inside the vocabulary.
  for (int i = 0; i < batch.B; ++i)
    for (int s = 0; s < batch.S; ++s) {
      const size_t k = sz(i) * sz(batch.S) + sz(s);
      host_source_[k] = s < batch.source_lengths[sz(i)] ? batch.source[k] : 0;
    }
  backend().upload(source_.data(), host_source_.data(), sz(enc_.rows()) * sizeof(int32_t));
  backend().upload(lengths_.data(), batch.source_lengths.data(), sz(batch.B) * sizeof(int32_t));
  if (setup_.pack_rows && in_training_step()) pack(batch);
  const int C = cfg_.d_model;
  const float* x = enc_embed_.forward(source_.data(), nullptr, enc_.padded());
  if (enc_.is_packed()) {
    backend().gather_rows(enc_in_, x, enc_.packed.pack, enc_.rows(), C);
    x = enc_in_;
  }
  mem_.x = encoder_.forward(x, enc_, lengths_.data(), nullptr);
  mem_.Tk = batch.S;
  mem_.key_len = lengths_.data();
  mem_.dx = dmem_;
  mem_.packed = enc_.packed;
  x = dec_embed_.forward(tokens_, nullptr, dec_.padded());
  if (dec_.is_packed()) {
    backend().gather_rows(dec_in_, x, dec_.packed.pack, dec_.rows(), C);
    x = dec_in_;
  }
  out_ = decoder_.forward(x, dec_, nullptr, &mem_);
  head_.forward(out_, dec_.rows());
}

void EncDec::backward(const Batch&, const DropoutContext&) {  // of the last forward's passes
  head_.backward(dhead_, out_, dec_.rows());
  core_.ready().release(head_.params(), core_.table());
  const size_t mem_floats = sz(enc_.rows()) * sz(cfg_.d_model);
  backend().zero(dmem_, mem_floats * sizeof(float));
  decoder_.backward(dstream_, dhead_, dec_, nullptr, &mem_);
  dec_embed_.backward(unpacked(dstream_, dec_), tokens_, nullptr, dec_.padded());
  core_.ready().release(dec_embed_.params(), core_.table());
  // Every decoder layer has added its partial gradient of the encoder output: one sum over the
  // tensor-parallel group, then the encoder's backward (identical on every rank).
  copy_to_tp_region_backward(tp(), dmem_, mem_floats);
  encoder_.backward(dstream_, dmem_, enc_, lengths_.data(), nullptr);
  enc_embed_.backward(unpacked(dstream_, enc_), source_.data(), nullptr, enc_.padded());
  core_.ready().release(enc_embed_.params(), core_.table());
}

}  // namespace ph
