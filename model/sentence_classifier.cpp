#include "model/sentence_classifier.h"

#include "model/vocab_parallel_loss.h"

namespace ph {

SentenceClassifier::SentenceClassifier(ModelCore& core, int C, float init_std, int max_batch)
    : Block(core), C_(C) {
  pw_ = add_param("pooler.weight", {C, C}, Split::Replicated, InitKind::Normal, init_std, true);
  pb_ = add_param("pooler.bias", {C}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  cw_ = add_param("cls.weight", {kClasses, C}, Split::Replicated, InitKind::Normal, init_std, true);
  cb_ = add_param("cls.bias", {kClasses}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  be().reserve_linear(max_batch, C, C);
  const size_t n = static_cast<size_t>(max_batch) * static_cast<size_t>(C);
  const size_t B = static_cast<size_t>(max_batch);
  core.plan().own(&pre_, n);
  core.plan().own(&pooled_, n);
  core.plan().own(&logits_, B * kClasses);
  core.plan().own(&losses_, B);
  core.plan().shared(&dpooled_, "sentence.dpooled", n);
  core.plan().shared(&dpre_, "sentence.dpre", n);
}

void SentenceClassifier::forward(const float* x, const int32_t* labels, int B) {
  const size_t n = static_cast<size_t>(B) * static_cast<size_t>(C_);
  be().matmul_forward(pre_, x, P(pw_), P(pb_), B, C_, C_);
  be().tanh_forward(pooled_, pre_, n);
  be().matmul_forward(logits_, pooled_, P(cw_), P(cb_), B, C_, kClasses);
  be().crossentropy_forward(losses_, logits_, labels, B, kClasses, kClasses, kIgnoreIndex, 0.0f);
}

void SentenceClassifier::backward(float* dx, const float* x, const int32_t* labels, int B,
                                  float dloss) {
  const size_t n = static_cast<size_t>(B) * static_cast<size_t>(C_);
  be().crossentropy_fused(logits_, losses_, labels, B, kClasses, kClasses, kIgnoreIndex, 0.0f,
                          dloss);
  be().zero(dpooled_, n * sizeof(float));
  be().matmul_backward(dpooled_, G(cw_), G(cb_), logits_, pooled_, P(cw_), B, C_, kClasses);
  be().zero(dpre_, n * sizeof(float));
  be().tanh_backward(dpre_, pre_, dpooled_, n);
  be().zero(dx, n * sizeof(float));
  be().matmul_backward(dx, G(pw_), G(pb_), dpre_, x, P(pw_), B, C_, C_);
}

}  // namespace ph
