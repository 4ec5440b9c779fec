#include "model/block_specs.h"

namespace ph {

EmbeddingSpec embedding_spec(const ModelConfig& cfg, int max_batch, int T_max, uint32_t site) {
  EmbeddingSpec e;
  e.V = cfg.vocab_size;
  e.C = cfg.d_model;
  e.T_max = T_max;
  e.positions = cfg.pos_encoding;
  e.scale = cfg.embed_scale;
  e.bias = cfg.bias;
  e.ln_eps = cfg.layer_norm_eps;
  e.init_std = cfg.init_std;
  e.dropout = Dropout{cfg.dropout_embed, site, T_max};
  e.max_batch = max_batch;
  return e;
}

LayerSpec layer_spec(const ModelConfig& cfg, int max_batch, int T_max) {
  LayerSpec l;
  l.C = cfg.d_model;
  l.H = cfg.n_heads;
  l.F = cfg.ffn_width();
  l.norm = cfg.norm;
  l.activation = cfg.activation;
  l.bias = cfg.bias;
  l.ln_eps = cfg.layer_norm_eps;
  l.init_std = l.proj_std = cfg.init_std;
  l.dropout_attn = cfg.dropout_attn;
  l.dropout_resid = cfg.dropout_resid;
  l.T_max = l.Tk_max = T_max;
  l.max_batch = max_batch;
  return l;
}

}  // namespace ph
