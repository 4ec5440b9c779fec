#include "model/transformer_layer.h"

#include <stdexcept>

namespace ph {

namespace {

AttentionSpec attention_spec(const LayerSpec& s, int index, rng::DropoutStack stack, bool causal,
                             int Tk_max) {
  AttentionSpec a;
  a.C = s.C;
  a.H = s.H;
  a.causal = causal;
  a.bias = s.bias;
  a.init_std = s.init_std;
  a.proj_std = s.proj_std;
  a.probs = Dropout{s.dropout_attn,
                    rng::dropout_site(stack, index, rng::DropoutSlot::kAttentionProbs), s.T_max};
  a.Tk_max = Tk_max;
  a.max_batch = s.max_batch;
  a.packed_rows = s.packed_rows;
  a.select_rows = s.select_rows && !causal;  // self-attention of an encoder
  return a;
}

Dropout resid_dropout(const LayerSpec& s, int index, rng::DropoutStack stack,
                      rng::DropoutSlot slot) {
  return Dropout{s.dropout_resid, rng::dropout_site(stack, index, slot), s.T_max};
}

std::string ln_name(const std::string& prefix, int position) {
  return prefix + "ln" + std::to_string(position);
}

}  // namespace

TransformerLayer::TransformerLayer(ModelCore& core, const std::string& prefix, int index,
                                   const LayerSpec& s)
    : Block(core),
      ln_attn_(core, ln_name(prefix, 1), s.C, s.bias, s.max_batch * s.T_max, s.ln_eps),
      attn_(core, prefix + "attn.", attention_spec(s, index, s.stack, s.causal, s.T_max)),
      attn_branch_(core, s.norm, ln_attn_,
                   resid_dropout(s, index, s.stack, rng::DropoutSlot::kAttentionOut), s.C,
                   s.max_batch * s.T_max, s.select_rows),
      ln_cross_(s.cross ? std::make_unique<LayerNorm>(core, ln_name(prefix, 2), s.C, s.bias,
                                                      s.max_batch * s.T_max, s.ln_eps)
                        : nullptr),
      cross_(s.cross ? std::make_unique<CrossAttention>(
                           core, prefix + "cross.",
                           attention_spec(s, index, rng::DropoutStack::kCross, false, s.Tk_max))
                     : nullptr),
      cross_branch_(s.cross ? std::make_unique<ResidualBranch>(
                                  core, s.norm, *ln_cross_,
                                  resid_dropout(s, index, rng::DropoutStack::kCross,
                                                rng::DropoutSlot::kAttentionOut),
                                  s.C, s.max_batch * s.T_max)
                            : nullptr),
      ln_ffn_(core, ln_name(prefix, s.cross ? 3 : 2), s.C, s.bias, s.max_batch * s.T_max, s.ln_eps),
      mlp_(core, prefix + "mlp.",
           MlpSpec{s.C, s.F, s.activation, s.bias, s.init_std, s.proj_std, s.max_batch * s.T_max}),
      ffn_branch_(core, s.norm, ln_ffn_,
                  resid_dropout(s, index, s.stack, rng::DropoutSlot::kFfnOut), s.C,
                  s.max_batch * s.T_max) {
  adopt(ln_attn_);
  adopt(attn_);
  if (cross_) {
    adopt(*ln_cross_);
    adopt(*cross_);
  }
  adopt(ln_ffn_);
  adopt(mlp_);
}

const float* TransformerLayer::forward(const float* x, const Pass& pass, const int32_t* key_len,
                                       const Memory* mem, const Pass* out) {
  if (out && cross_)
    throw std::logic_error("TransformerLayer: output rows of a layer with cross-attention");
  const Packing* rows = out ? &out->packed : nullptr;
  const Pass& o = output_of(pass, out);  // the rows after self-attention
  after_attn_ = attn_branch_.forward(
      x, pass, [&](float* y, const float* in) { attn_.forward(y, in, pass, key_len, rows); }, out);
  after_cross_ = after_attn_;
  if (cross_)
    after_cross_ = cross_branch_->forward(
        after_attn_, pass, [&](float* y, const float* in) { cross_->forward(y, in, pass, *mem); });
  return ffn_branch_.forward(after_cross_, o,
                             [&](float* y, const float* in) { mlp_.forward(y, in, o.rows()); });
}

void TransformerLayer::backward(float* dstream, const float* x, const Pass& pass,
                                const int32_t* key_len, const Memory* mem, const Pass* out) {
  const Packing* rows = out ? &out->packed : nullptr;
  const Pass& o = output_of(pass, out);
  ffn_branch_.backward(dstream, after_cross_, o, [&](float* dx, const float* dy, const float* in) {
    mlp_.backward(dx, dy, in, o.rows());
  });
  if (cross_)
    cross_branch_->backward(dstream, after_attn_, pass,
                            [&](float* dx, const float* dy, const float* in) {
                              cross_->backward(dx, dy, in, pass, *mem);
                            });
  attn_branch_.backward(
      dstream, x, pass,
      [&](float* dx, const float* dy, const float* in) {
        attn_.backward(dx, dy, in, pass, key_len, rows);
      },
      out);
}

const float* TransformerLayer::step(const float* x, const DecodeStep& s, const LayerCache& cache) {
  Pass pass;  // no dropout
  pass.B = s.n;
  pass.T = 1;
  after_attn_ = attn_branch_.forward(
      x, pass, [&](float* y, const float* in) { attn_.step(y, in, s, cache.self); });
  after_cross_ = after_attn_;
  if (cross_)
    after_cross_ = cross_branch_->forward(after_attn_, pass, [&](float* y, const float* in) {
      cross_->step(y, in, s, cache.cross, cache.folded);
    });
  return ffn_branch_.forward(after_cross_, pass,
                             [&](float* y, const float* in) { mlp_.forward(y, in, s.n); });
}

void TransformerLayer::memory_kv(float* kv, const Memory& mem, int B, float* folded) {
  if (!cross_) throw std::logic_error("TransformerLayer: memory_kv of a layer without a memory");
  cross_->memory_kv(kv, mem, B, folded);
}

size_t TransformerLayer::folded_floats(int B, int Tk) const {
  if (!cross_) throw std::logic_error("TransformerLayer: a folded memory of a layer without one");
  return cross_->folded_floats(B, Tk);
}

}  // namespace ph
