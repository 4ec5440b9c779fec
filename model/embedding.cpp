#include "model/embedding.h"

#include <cmath>

namespace ph {

int padded_vocab_size(int vocab_size, int tp) {
  const int m = 128 * tp;
  return (vocab_size + m - 1) / m * m;
}

VocabParallelEmbedding::VocabParallelEmbedding(ModelCore& core, const std::string& prefix,
                                               const EmbeddingSpec& spec)
    : Block(core),
      spec_(spec),
      Vp_(padded_vocab_size(spec.V, core.tp().size)),
      Vl_(Vp_ / core.tp().size),
      v0_(core.tp().rank * Vl_),
      scale_(spec.scale ? std::sqrt(static_cast<float>(spec.C)) : 1.0f) {
  const int64_t C = spec.C;
  if (spec.tied_wte >= 0) {
    wte_ = spec.tied_wte;
    use(wte_);
  } else {
    wte_ = add_param(prefix + "wte", {spec.V, C}, Split::Dim0, InitKind::Normal, spec.init_std,
                     true, Vp_);
  }
  if (spec.positions == PosEncoding::kLearned)
    wpe_ = add_param(prefix + "wpe", {spec.T_max, C}, Split::Replicated, InitKind::Normal,
                     spec.init_std, true);
  if (spec.token_types > 0)
    wtt_ = add_param(prefix + "wtt", {spec.token_types, C}, Split::Replicated, InitKind::Normal,
                     spec.init_std, true);
  const int rows = spec.max_batch * spec.T_max;
  const size_t n = static_cast<size_t>(rows) * static_cast<size_t>(C);
  if (spec.layer_norm) {
    ln_ =
        std::make_unique<LayerNorm>(core, prefix + "emb_ln", spec.C, spec.bias, rows, spec.ln_eps);
    adopt(*ln_);
    core.plan().shared(&dsum_, "branch.dx", n);
  }
  core.plan().own(&sum_, n);
  if (spec.positions == PosEncoding::kSinusoidal)
    core.plan().own(&table_, static_cast<size_t>(spec.T_max) * static_cast<size_t>(C));
  if (spec.token_types > 0) core.plan().shared(&types_, "branch.out", n);
  core.plan().shared(&dy_, "branch.dy", n);
}

void VocabParallelEmbedding::prepare() {
  if (table_) be().sinusoidal_table(table_, spec_.T_max, spec_.C);
}

const float* VocabParallelEmbedding::positions(int pos_offset) const {
  const float* p = wpe_ >= 0 ? P(wpe_) : table_;
  return p ? p + static_cast<size_t>(pos_offset) * static_cast<size_t>(spec_.C) : nullptr;
}

const float* VocabParallelEmbedding::forward(const int32_t* tokens, const int32_t* types,
                                             const Pass& pass, int pos_offset) {
  const int N = pass.rows(), C = spec_.C;
  const size_t n = static_cast<size_t>(N) * static_cast<size_t>(C);
  const bool lead = tp().lead();
  be().embedding_forward(sum_, tokens, P(wte_), lead ? positions(pos_offset) : nullptr, pass.B,
                         pass.T, C, v0_, Vl_, scale_);
  if (wtt_ >= 0 && lead) {
    be().embedding_forward(types_, types, P(wtt_), nullptr, pass.B, pass.T, C, 0, spec_.token_types,
                           1.0f);
    be().residual_forward(sum_, sum_, types_, n);
  }
  reduce_from_tp_region(tp(), sum_, n);
  float* out = ln_ ? ln_->forward(sum_, N) : sum_;
  spec_.dropout.forward(be(), out, C, pass);
  return out;
}

void VocabParallelEmbedding::backward(const float* dout, const int32_t* tokens,
                                      const int32_t* types, const Pass& pass, int pos_offset) {
  const int N = pass.rows(), C = spec_.C;
  spec_.dropout.backward(be(), dy_, dout, C, pass);
  const float* d = dy_;
  if (ln_) {
    ln_->backward_into(dsum_, dy_, sum_, N);
    d = dsum_;
  }
  float* dpos =
      wpe_ >= 0 ? G(wpe_) + static_cast<size_t>(pos_offset) * static_cast<size_t>(C) : nullptr;
  be().embedding_backward(G(wte_), dpos, d, tokens, pass.B, pass.T, C, v0_, Vl_, scale_);
  if (wtt_ >= 0)
    be().embedding_backward(G(wtt_), nullptr, d, types, pass.B, pass.T, C, 0, spec_.token_types,
                            1.0f);
}

}  // namespace ph
