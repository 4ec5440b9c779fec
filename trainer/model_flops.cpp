#include "trainer/model_flops.h"

#include <algorithm>

namespace ph {

double gpt_flops_per_token(const ModelConfig& m, int64_t n_params) {
  const double V = m.vocab_size, d = m.d_model, T = m.seq_len, L = m.n_layers;
  double n_embed = V * d;
  if (m.pos_encoding == PosEncoding::kLearned) n_embed += T * d;
  if (!m.tie_embeddings) n_embed += V * d;
  const double n_nonembed = static_cast<double>(n_params) - n_embed;
  return 6.0 * n_nonembed + 6.0 * V * d + 12.0 * L * T * d;
}

double encdec_flops(const ModelConfig& m, double source, double target) {
  const double d = m.d_model, f = m.ffn_width(), V = m.vocab_size, S = m.source_len(),
               T = m.seq_len, Le = m.encoder_depth(), Ld = m.decoder_depth();
  const double per_source =
      Le * (6.0 * (4 * d * d + 2 * d * f) + 12.0 * S * d) + Ld * 6.0 * 2 * d * d;
  const double per_target =
      Ld * (6.0 * (6 * d * d + 2 * d * f) + 12.0 * T * d + 12.0 * S * d) + 6.0 * V * d;
  return source * per_source + target * per_target;
}

double encdec_flops_per_step(const ModelConfig& m, int B) {
  return encdec_flops(m, static_cast<double>(B) * m.source_len(),
                      static_cast<double>(B) * m.seq_len);
}

double bert_flops_per_step(const ModelConfig& m, int B, int P) {
  const double d = m.d_model, f = m.ffn_width(), V = m.vocab_size, T = m.seq_len, L = m.n_layers;
  const bool head = m.sentence_head != SentenceHead::kNone;
  const double out_rows = std::min(T, static_cast<double>(P) + (head ? 1 : 0));
  const double qkv_scores = 6.0 * 3 * d * d + 12.0 * T * d, out_ffn = 6.0 * (d * d + 2 * d * f);
  const double layers = L * T * qkv_scores + ((L - 1) * T + out_rows) * out_ffn;
  const double sentence = head ? 6.0 * (d * d + 2 * d) : 0;
  return B * (layers + P * 6.0 * (d * d + V * d) + sentence);
}

double flops_per_token(const Config& cfg, int64_t n_params) {
  const ModelConfig& m = cfg.model;
  switch (m.type) {
    case ModelType::kGpt:
      break;
    case ModelType::kEncDec:
      return encdec_flops_per_step(m, 1) / m.seq_len;
    case ModelType::kBert:
      return bert_flops_per_step(m, 1, cfg.data.mlm_predictions(m.seq_len)) / m.seq_len;
  }
  return gpt_flops_per_token(m, n_params);
}

}  // namespace ph
