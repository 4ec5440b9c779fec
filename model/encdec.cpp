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

LayerSpec encoder_layer(const ModelConfig& c, int max_batch) {
  LayerSpec l = layer_spec(c, max_batch, c.source_len());
  l.stack = rng::DropoutStack::kEncoder;
  return l;
}

LayerSpec decoder_layer(const ModelConfig& c, int max_batch) {
  LayerSpec l = layer_spec(c, max_batch, c.seq_len);
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
      encoder_(core_, "enc.", cfg.encoder_depth(), encoder_layer(cfg, setup.max_batch)),
      dec_embed_(core_, "dec.", target_embedding(cfg, setup.max_batch, enc_embed_.wte())),
      decoder_(core_, "dec.", cfg.decoder_depth(), decoder_layer(cfg, setup.max_batch)),
      head_(core_, cfg.share_embeddings == ShareEmbeddings::kNone ? -1 : dec_embed_.wte(),
            "lm_head", cfg.d_model, cfg.vocab_size, dec_embed_.padded_vocab(), cfg.init_std,
            setup.max_batch * cfg.seq_len) {
  const size_t C = sz(cfg.d_model);
  const size_t src_rows = sz(setup.max_batch) * sz(S_);
  const size_t rows = sz(setup.max_batch) * sz(std::max(S_, cfg.seq_len));
  core_.plan().own(&dmem_, src_rows * C);
  core_.plan().shared(&dstream_, "stream.d", rows * C);
  core_.plan().shared(&dhead_, "branch.dy", rows * C);
  finish_construction();
  enc_embed_.prepare();
  dec_embed_.prepare();
  source_ = DeviceBuffer<int32_t>(be, src_rows);
  lengths_ = DeviceBuffer<int32_t>(be, sz(setup.max_batch));
  host_source_.resize(src_rows);
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
  const Pass dec = pass_of(batch, d);
  Pass enc = dec;
  enc.T = batch.S;
  tokens_ = upload_tokens(batch);
  check_source(batch);
  // Padding is never attended; token 0 keeps its lookup inside the vocabulary.
  for (int i = 0; i < batch.B; ++i)
    for (int s = 0; s < batch.S; ++s) {
      const size_t k = sz(i) * sz(batch.S) + sz(s);
      host_source_[k] = s < batch.source_lengths[sz(i)] ? batch.source[k] : 0;
    }
  backend().upload(source_.data(), host_source_.data(), sz(enc.rows()) * sizeof(int32_t));
  backend().upload(lengths_.data(), batch.source_lengths.data(), sz(batch.B) * sizeof(int32_t));
  mem_.x = encoder_.forward(enc_embed_.forward(source_.data(), nullptr, enc), enc, lengths_.data(),
                            nullptr);
  mem_.Tk = batch.S;
  mem_.key_len = lengths_.data();
  mem_.dx = dmem_;
  out_ = decoder_.forward(dec_embed_.forward(tokens_, nullptr, dec), dec, nullptr, &mem_);
  head_.forward(out_, dec.rows());
}

void EncDec::backward(const Batch& batch, const DropoutContext& d) {
  const Pass dec = pass_of(batch, d);
  Pass enc = dec;
  enc.T = batch.S;
  head_.backward(dhead_, out_, dec.rows());
  core_.ready().release(head_.params(), core_.table());
  const size_t mem_floats = sz(enc.rows()) * sz(cfg_.d_model);
  backend().zero(dmem_, mem_floats * sizeof(float));
  decoder_.backward(dstream_, dhead_, dec, nullptr, &mem_);
  dec_embed_.backward(dstream_, tokens_, nullptr, dec);
  core_.ready().release(dec_embed_.params(), core_.table());
  // Every decoder layer has added its partial gradient of the encoder output: one sum over the
  // tensor-parallel group, then the encoder's backward (identical on every rank).
  copy_to_tp_region_backward(tp(), dmem_, mem_floats);
  encoder_.backward(dstream_, dmem_, enc, lengths_.data(), nullptr);
  enc_embed_.backward(dstream_, source_.data(), nullptr, enc);
  core_.ready().release(enc_embed_.params(), core_.table());
}

}  // namespace ph
