#include "model/gpt.h"

#include <cmath>

#include "model/block_specs.h"

namespace ph {

namespace {

LayerSpec gpt_layer(const ModelConfig& c, int max_batch) {
  LayerSpec l = layer_spec(c, max_batch, c.seq_len);
  l.causal = true;
  // GPT-2: the projections that end a residual branch are scaled by 1/sqrt(2L) (two per layer).
  l.proj_std = c.init_std / std::sqrt(2.0f * static_cast<float>(c.n_layers));
  return l;
}

}  // namespace

Gpt::Gpt(Backend& be, const ModelConfig& cfg, const ModelSetup& setup)
    : Model(be, cfg, setup),
      embed_(core_, "", embedding_spec(cfg, setup.max_batch, cfg.seq_len, rng::kSiteEmbed)),
      stack_(core_, "", cfg.n_layers, gpt_layer(cfg, setup.max_batch)),
      head_(core_, cfg.tie_embeddings ? embed_.wte() : -1, "lm_head", cfg.d_model, cfg.vocab_size,
            embed_.padded_vocab(), cfg.init_std, setup.max_batch * cfg.seq_len) {
  const size_t n = static_cast<size_t>(setup.max_batch) * static_cast<size_t>(cfg.seq_len) *
                   static_cast<size_t>(cfg.d_model);
  core_.plan().shared(&dstream_, "stream.d", n);
  core_.plan().shared(&dhead_, "branch.dy", n);
  finish_construction();
  embed_.prepare();
}

void Gpt::forward(const Batch& batch, const DropoutContext& d) {
  const Pass pass = pass_of(batch, d);
  tokens_ = upload_tokens(batch);
  const float* x = embed_.forward(tokens_, nullptr, pass);
  out_ = stack_.forward(x, pass, nullptr, nullptr);
  head_.forward(out_, pass.rows());
}

void Gpt::backward(const Batch& batch, const DropoutContext& d) {
  const Pass pass = pass_of(batch, d);
  head_.backward(dhead_, out_, pass.rows());
  core_.ready().release(head_.params(), core_.table());
  stack_.backward(dstream_, dhead_, pass, nullptr, nullptr);
  embed_.backward(dstream_, tokens_, nullptr, pass);
  core_.ready().release(embed_.params(), core_.table());
}

}  // namespace ph
