#include "model/transformer_stack.h"

namespace ph {

TransformerStack::TransformerStack(ModelCore& core, const std::string& prefix, int n_layers,
                                   const LayerSpec& spec)
    : Block(core), C_(spec.C) {
  for (int l = 0; l < n_layers; ++l) {
    layers_.push_back(
        std::make_unique<TransformerLayer>(core, prefix + "h." + std::to_string(l) + ".", l, spec));
    adopt(*layers_.back());
  }
  if (spec.norm == Norm::kPre) {
    final_ln_ = std::make_unique<LayerNorm>(core, prefix + "lnf", spec.C, spec.bias,
                                            spec.max_batch * spec.T_max, spec.ln_eps);
    adopt(*final_ln_);
  }
  inputs_.resize(layers_.size());
}

const float* TransformerStack::forward(const float* x, const Pass& pass, const int32_t* key_len,
                                       const Memory* mem, const Pass* out) {
  const size_t last = layers_.size() - 1;
  for (size_t l = 0; l < layers_.size(); ++l) {
    inputs_[l] = x;
    x = layers_[l]->forward(x, pass, key_len, mem, l == last ? out : nullptr);
  }
  last_ = x;
  return final_ln_ ? final_ln_->forward(x, output_of(pass, out).rows()) : x;
}

void TransformerStack::backward(float* dstream, const float* dout, const Pass& pass,
                                const int32_t* key_len, const Memory* mem, const Pass* out) {
  const int rows = output_of(pass, out).rows();
  const size_t bytes = static_cast<size_t>(rows) * static_cast<size_t>(C_) * sizeof(float);
  if (final_ln_) {
    final_ln_->backward_into(dstream, dout, last_, rows);
    core_.ready().release(final_ln_->params(), core_.table());
  } else {
    be().copy(dstream, dout, bytes);
  }
  const size_t last = layers_.size() - 1;
  for (size_t l = layers_.size(); l-- > 0;) {
    layers_[l]->backward(dstream, inputs_[l], pass, key_len, mem, l == last ? out : nullptr);
    core_.ready().release(layers_[l]->params(), core_.table());
  }
}

const float* TransformerStack::step(const float* x, const DecodeStep& s,
                                    const std::vector<LayerCache>& caches) {
  for (size_t l = 0; l < layers_.size(); ++l) x = layers_[l]->step(x, s, caches[l]);
  return final_ln_ ? final_ln_->forward(x, s.n) : x;
}

void TransformerStack::memory_kv(const std::vector<float*>& kv, const Memory& mem, int B,
                                 const std::vector<float*>* folded) {
  for (size_t l = 0; l < layers_.size(); ++l)
    layers_[l]->memory_kv(kv[l], mem, B, folded ? (*folded)[l] : nullptr);
}

}  // namespace ph
