#include "model/gpt.h"

#include <cmath>
#include <cstring>
#include <string>

#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/residual.h"

namespace ph {

namespace {

int round_up(int x, int m) {
  return (x + m - 1) / m * m;
}

void zero(float* p, size_t n) {
  std::memset(p, 0, n * sizeof(float));
}

DropoutSpec spec(const DropoutContext& d, float p, uint32_t site) {
  DropoutSpec s;
  s.p = d.train ? p : 0.0f;
  s.seed = d.seed;
  s.step = d.step;
  s.site = site;
  return s;
}

// A [B*T, C] activation of micro-batch samples [sample0, sample0 + B) in the global batch.
cpu::DropoutBlock rows_block(const DropoutContext& d, int T, int C) {
  cpu::DropoutBlock b;
  b.row0 = d.sample0 * T;
  b.col0 = 0;
  b.global_cols = C;
  return b;
}

}  // namespace

Gpt::Gpt(const ModelConfig& cfg, int max_batch)
    : cfg_(cfg),
      maxB_(max_batch),
      T_(cfg.seq_len),
      C_(cfg.d_model),
      H_(cfg.n_heads),
      F_(cfg.ffn_width()),
      L_(cfg.n_layers),
      V_(cfg.vocab_size),
      Vp_(round_up(cfg.vocab_size, 128)) {
  build_table();
  table_.place(0, 1);
  params_ = Arena(table_.total());
  grads_ = Arena(table_.total());
  layout_activations();
  if (cfg_.pos_encoding == "sinusoidal") cpu::sinusoidal_table(pos_table_, T_, C_);
}

void Gpt::build_table() {
  const int64_t C = C_, F = F_, V = V_, T = T_;
  const float std0 = cfg_.init_std;
  // GPT-2: residual projections scaled by 1/sqrt(2L) (two residual additions per block).
  const float std_resid = std0 / std::sqrt(2.0f * static_cast<float>(L_));
  const bool bias = cfg_.bias;
  wte_ = table_.add("wte", {V, C}, Split::Dim0, InitKind::Normal, std0, true, Vp_);
  if (cfg_.pos_encoding == "learned")
    wpe_ = table_.add("wpe", {T, C}, Split::Replicated, InitKind::Normal, std0, true);
  auto vec = [&](const std::string& name, int64_t n, InitKind k) {
    return table_.add(name, {n}, Split::Replicated, k, 0.0f, false);
  };
  for (int l = 0; l < L_; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    Layer ly{};
    ly.ln1w = vec(p + "ln1.weight", C, InitKind::Ones);
    ly.ln1b = bias ? vec(p + "ln1.bias", C, InitKind::Zeros) : -1;
    // q, k, v weights adjacent, then their biases adjacent: one fused [3C, C] GEMM.
    ly.qw = table_.add(p + "attn.q.weight", {C, C}, Split::Dim0, InitKind::Normal, std0, true);
    table_.add(p + "attn.k.weight", {C, C}, Split::Dim0, InitKind::Normal, std0, true);
    table_.add(p + "attn.v.weight", {C, C}, Split::Dim0, InitKind::Normal, std0, true);
    ly.qb = -1;
    if (bias) {
      ly.qb = table_.add(p + "attn.q.bias", {C}, Split::Dim0, InitKind::Zeros, 0.0f, false);
      table_.add(p + "attn.k.bias", {C}, Split::Dim0, InitKind::Zeros, 0.0f, false);
      table_.add(p + "attn.v.bias", {C}, Split::Dim0, InitKind::Zeros, 0.0f, false);
    }
    ly.projw =
        table_.add(p + "attn.proj.weight", {C, C}, Split::Dim1, InitKind::Normal, std_resid, true);
    ly.projb = bias ? vec(p + "attn.proj.bias", C, InitKind::Zeros) : -1;
    ly.ln2w = vec(p + "ln2.weight", C, InitKind::Ones);
    ly.ln2b = bias ? vec(p + "ln2.bias", C, InitKind::Zeros) : -1;
    ly.fcw = table_.add(p + "mlp.fc.weight", {F, C}, Split::Dim0, InitKind::Normal, std0, true);
    ly.fcb =
        bias ? table_.add(p + "mlp.fc.bias", {F}, Split::Dim0, InitKind::Zeros, 0.0f, false) : -1;
    ly.fcprojw =
        table_.add(p + "mlp.proj.weight", {C, F}, Split::Dim1, InitKind::Normal, std_resid, true);
    ly.fcprojb = bias ? vec(p + "mlp.proj.bias", C, InitKind::Zeros) : -1;
    layers_.push_back(ly);
  }
  if (cfg_.norm == "pre") {
    lnfw_ = vec("lnf.weight", C, InitKind::Ones);
    lnfb_ = bias ? vec("lnf.bias", C, InitKind::Zeros) : -1;
  }
  if (!cfg_.tie_embeddings)
    lm_head_ = table_.add("lm_head.weight", {V, C}, Split::Dim0, InitKind::Normal, std0, true, Vp_);
}

void Gpt::layout_activations() {
  const size_t BT = static_cast<size_t>(maxB_) * T_;
  const size_t C = C_, F = F_, att = static_cast<size_t>(maxB_) * H_ * T_ * T_;
  size_t total = 0;
  auto reserve = [&](size_t n) {
    const size_t at = total;
    total += (n + 15) / 16 * 16;
    return at;
  };
  // First pass computes offsets, second binds pointers once the arena exists.
  std::vector<size_t> offs;
  auto take = [&](size_t n) { offs.push_back(reserve(n)); };
  take(BT * C);  // encoded
  take(cfg_.pos_encoding == "sinusoidal" ? static_cast<size_t>(T_) * C : 0);
  for (int l = 0; l < L_; ++l) {
    take(BT * C);
    take(BT);
    take(BT);
    take(BT * 3 * C);
    take(att);
    take(BT * C);
    take(BT * C);
    take(BT * C);
    take(BT * C);
    take(BT);
    take(BT);
    take(BT * F);
    take(BT * F);
    take(BT * C);
    take(BT * C);
  }
  take(BT * C);
  take(BT);
  take(BT);                             // lnf
  take(BT * static_cast<size_t>(Vp_));  // logits
  take(BT);                             // losses
  take(BT * C);
  take(BT * C);
  take(BT * C);  // dres, dtmp, dtmp2
  take(BT * F);
  take(BT * F);
  take(BT * 3 * C);
  take(att);  // dff1, dff2, dqkv, datt
  acts_ = Arena(total);
  size_t k = 0;
  auto at = [&]() { return acts_.data() + offs[k++]; };
  encoded_ = at();
  pos_table_ = at();
  la_.resize(static_cast<size_t>(L_));
  for (LayerActs& a : la_) {
    a.ln1 = at();
    a.ln1_mean = at();
    a.ln1_rstd = at();
    a.qkv = at();
    a.att = at();
    a.atty = at();
    a.attproj = at();
    a.res2 = at();
    a.ln2 = at();
    a.ln2_mean = at();
    a.ln2_rstd = at();
    a.fch = at();
    a.fch_act = at();
    a.fcproj = at();
    a.res3 = at();
  }
  lnf_ = at();
  lnf_mean_ = at();
  lnf_rstd_ = at();
  logits_ = at();
  losses_ = at();
  dres_ = at();
  dtmp_ = at();
  dtmp2_ = at();
  dff1_ = at();
  dff2_ = at();
  dqkv_ = at();
  datt_ = at();
}

size_t Gpt::memory_bytes() const {
  return (params_.size() + grads_.size() + acts_.size()) * sizeof(float);
}

void Gpt::forward(const int32_t* inputs, int B, int T, const DropoutContext& d) {
  const int N = B * T;
  const size_t NC = static_cast<size_t>(N) * C_;
  const bool pre = cfg_.norm == "pre";
  const float emb_scale = cfg_.embed_scale ? std::sqrt(static_cast<float>(C_)) : 1.0f;
  const float* pos =
      wpe_ >= 0 ? P(wpe_) : (cfg_.pos_encoding == "sinusoidal" ? pos_table_ : nullptr);
  cpu::embedding_forward(encoded_, inputs, P(wte_), pos, B, T, C_, 0, Vp_, emb_scale);
  const cpu::DropoutBlock rows = rows_block(d, T, C_);
  cpu::dropout_forward(encoded_, encoded_, N, C_, spec(d, cfg_.dropout_embed, kSiteEmbed), rows);

  cpu::AttentionCoords coords;
  coords.sample0 = d.sample0;
  coords.head0 = 0;
  coords.H_total = H_;
  const float* x = encoded_;
  for (int l = 0; l < L_; ++l) {
    const Layer& ly = layers_[static_cast<size_t>(l)];
    LayerActs& a = la_[static_cast<size_t>(l)];
    auto bias = [&](int idx) { return idx >= 0 ? P(idx) : nullptr; };
    // Attention sub-block. Pre-norm: res2 = x + D(attn(LN1(x))); post-norm: res2 = x + D(attn(x)),
    // ln1 = LN1(res2) is the block's next stream.
    const float* attn_in = x;
    if (pre) {
      cpu::layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, P(ly.ln1w), bias(ly.ln1b), N, C_);
      attn_in = a.ln1;
    }
    cpu::matmul_forward(a.qkv, attn_in, P(ly.qw), bias(ly.qb), N, C_, 3 * C_);
    cpu::attention_forward(a.atty, a.att, a.qkv, nullptr, B, T, C_, H_, true,
                           spec(d, cfg_.dropout_attn, site_attn_probs(l)), coords);
    cpu::matmul_forward(a.attproj, a.atty, P(ly.projw), bias(ly.projb), N, C_, C_);
    cpu::dropout_forward(a.attproj, a.attproj, N, C_,
                         spec(d, cfg_.dropout_resid, site_attn_resid(l)), rows);
    cpu::residual_forward(a.res2, x, a.attproj, NC);
    const float* mid = a.res2;
    if (!pre) {
      cpu::layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, a.res2, P(ly.ln1w), bias(ly.ln1b), N,
                             C_);
      mid = a.ln1;
    }
    // FFN sub-block, same pattern with LN2.
    const float* ffn_in = mid;
    if (pre) {
      cpu::layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, mid, P(ly.ln2w), bias(ly.ln2b), N, C_);
      ffn_in = a.ln2;
    }
    cpu::matmul_forward(a.fch, ffn_in, P(ly.fcw), bias(ly.fcb), N, C_, F_);
    if (cfg_.activation == "gelu")
      cpu::gelu_forward(a.fch_act, a.fch, static_cast<size_t>(N) * F_);
    else
      cpu::relu_forward(a.fch_act, a.fch, static_cast<size_t>(N) * F_);
    cpu::matmul_forward(a.fcproj, a.fch_act, P(ly.fcprojw), bias(ly.fcprojb), N, F_, C_);
    cpu::dropout_forward(a.fcproj, a.fcproj, N, C_, spec(d, cfg_.dropout_resid, site_mlp_resid(l)),
                         rows);
    cpu::residual_forward(a.res3, mid, a.fcproj, NC);
    x = a.res3;
    if (!pre) {
      cpu::layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res3, P(ly.ln2w), bias(ly.ln2b), N,
                             C_);
      x = a.ln2;
    }
  }
  const float* head_in = x;
  if (pre) {
    cpu::layernorm_forward(lnf_, lnf_mean_, lnf_rstd_, x, P(lnfw_), lnfb_ >= 0 ? P(lnfb_) : nullptr,
                           N, C_);
    head_in = lnf_;
  }
  const float* head_w = lm_head_ >= 0 ? P(lm_head_) : P(wte_);
  cpu::matmul_forward(logits_, head_in, head_w, nullptr, N, C_, Vp_);
}

double Gpt::sum_losses(const int32_t* targets, int N, int64_t* counted) const {
  double sum = 0.0;
  int64_t n = 0;
  for (int i = 0; i < N; ++i)
    if (targets[i] != kIgnoreIndex) {
      sum += losses_[i];
      ++n;
    }
  if (counted) *counted = n;
  return sum;
}

double Gpt::loss(const int32_t* inputs, const int32_t* targets, int B, int T,
                 const DropoutContext& d, int64_t* counted) {
  forward(inputs, B, T, d);
  const int N = B * T;
  cpu::crossentropy_forward(losses_, logits_, targets, N, V_, Vp_, kIgnoreIndex);
  return sum_losses(targets, N, counted);
}

double Gpt::forward_backward(const int32_t* inputs, const int32_t* targets, int B, int T,
                             float dloss, const DropoutContext& d, int64_t* counted) {
  forward(inputs, B, T, d);
  const int N = B * T;
  cpu::crossentropy_fused(logits_, losses_, targets, N, V_, Vp_, kIgnoreIndex, dloss);
  const double sum = sum_losses(targets, N, counted);
  backward(inputs, B, T, d);
  return sum;
}

void Gpt::backward(const int32_t* inputs, int B, int T, const DropoutContext& d) {
  const int N = B * T;
  const size_t NC = static_cast<size_t>(N) * C_;
  const size_t NF = static_cast<size_t>(N) * F_;
  const bool pre = cfg_.norm == "pre";
  const cpu::DropoutBlock rows = rows_block(d, T, C_);
  cpu::AttentionCoords coords;
  coords.sample0 = d.sample0;
  coords.head0 = 0;
  coords.H_total = H_;
  auto gbias = [&](int idx) { return idx >= 0 ? G(idx) : nullptr; };

  // LM head: logits_ holds dlogits. dres = d(stream after the last block).
  const float* last = L_ > 0 ? (pre ? la_.back().res3 : la_.back().ln2) : encoded_;
  const float* head_in = pre ? lnf_ : last;
  const int head_idx = lm_head_ >= 0 ? lm_head_ : wte_;
  if (pre) {
    zero(dtmp_, NC);
    cpu::matmul_backward(dtmp_, G(head_idx), nullptr, logits_, head_in, P(head_idx), N, C_, Vp_);
    zero(dres_, NC);
    cpu::layernorm_backward(dres_, G(lnfw_), gbias(lnfb_), dtmp_, last, P(lnfw_), lnf_mean_,
                            lnf_rstd_, N, C_);
  } else {
    zero(dres_, NC);
    cpu::matmul_backward(dres_, G(head_idx), nullptr, logits_, head_in, P(head_idx), N, C_, Vp_);
  }

  for (int l = L_ - 1; l >= 0; --l) {
    const Layer& ly = layers_[static_cast<size_t>(l)];
    LayerActs& a = la_[static_cast<size_t>(l)];
    const float* x =
        l == 0 ? encoded_
               : (pre ? la_[static_cast<size_t>(l) - 1].res3 : la_[static_cast<size_t>(l) - 1].ln2);
    const float* mid = pre ? a.res2 : a.ln1;
    const float* ffn_in = pre ? a.ln2 : a.ln1;
    const float* attn_in = pre ? a.ln1 : x;

    if (!pre) {
      // dres holds d(LN2(res3)); turn it into d(res3).
      zero(dtmp2_, NC);
      cpu::layernorm_backward(dtmp2_, G(ly.ln2w), gbias(ly.ln2b), dres_, a.res3, P(ly.ln2w),
                              a.ln2_mean, a.ln2_rstd, N, C_);
      std::memcpy(dres_, dtmp2_, NC * sizeof(float));
    }
    // dres = d(res3). FFN branch: res3 = mid + D(fcproj).
    cpu::dropout_backward(dtmp_, dres_, N, C_, spec(d, cfg_.dropout_resid, site_mlp_resid(l)),
                          rows);
    zero(dff1_, NF);
    cpu::matmul_backward(dff1_, G(ly.fcprojw), gbias(ly.fcprojb), dtmp_, a.fch_act, P(ly.fcprojw),
                         N, F_, C_);
    zero(dff2_, NF);
    if (cfg_.activation == "gelu")
      cpu::gelu_backward(dff2_, a.fch, dff1_, NF);
    else
      cpu::relu_backward(dff2_, a.fch, dff1_, NF);
    if (pre) {
      zero(dtmp2_, NC);
      cpu::matmul_backward(dtmp2_, G(ly.fcw), gbias(ly.fcb), dff2_, ffn_in, P(ly.fcw), N, C_, F_);
      // dres (= d res3 = d mid through the skip) += LN2 backward.
      cpu::layernorm_backward(dres_, G(ly.ln2w), gbias(ly.ln2b), dtmp2_, mid, P(ly.ln2w),
                              a.ln2_mean, a.ln2_rstd, N, C_);
    } else {
      // d mid = d res3 (skip) + FFN input gradient; mid = ln1 = LN1(res2).
      cpu::matmul_backward(dres_, G(ly.fcw), gbias(ly.fcb), dff2_, ffn_in, P(ly.fcw), N, C_, F_);
      zero(dtmp2_, NC);
      cpu::layernorm_backward(dtmp2_, G(ly.ln1w), gbias(ly.ln1b), dres_, a.res2, P(ly.ln1w),
                              a.ln1_mean, a.ln1_rstd, N, C_);
      std::memcpy(dres_, dtmp2_, NC * sizeof(float));
    }
    // dres = d(res2). Attention branch: res2 = x + D(attproj).
    cpu::dropout_backward(dtmp_, dres_, N, C_, spec(d, cfg_.dropout_resid, site_attn_resid(l)),
                          rows);
    zero(dtmp2_, NC);
    cpu::matmul_backward(dtmp2_, G(ly.projw), gbias(ly.projb), dtmp_, a.atty, P(ly.projw), N, C_,
                         C_);
    zero(dqkv_, NC * 3);
    cpu::attention_backward(dqkv_, datt_, dtmp2_, a.qkv, a.att, nullptr, B, T, C_, H_, true,
                            spec(d, cfg_.dropout_attn, site_attn_probs(l)), coords);
    if (pre) {
      zero(dtmp2_, NC);
      cpu::matmul_backward(dtmp2_, G(ly.qw), gbias(ly.qb), dqkv_, attn_in, P(ly.qw), N, C_, 3 * C_);
      cpu::layernorm_backward(dres_, G(ly.ln1w), gbias(ly.ln1b), dtmp2_, x, P(ly.ln1w), a.ln1_mean,
                              a.ln1_rstd, N, C_);
    } else {
      cpu::matmul_backward(dres_, G(ly.qw), gbias(ly.qb), dqkv_, attn_in, P(ly.qw), N, C_, 3 * C_);
    }
    // dres = d(x), the block input.
  }
  // Embedding: encoded = D(scale * wte[tok] + pos).
  cpu::dropout_backward(dtmp_, dres_, N, C_, spec(d, cfg_.dropout_embed, kSiteEmbed), rows);
  const float emb_scale = cfg_.embed_scale ? std::sqrt(static_cast<float>(C_)) : 1.0f;
  cpu::embedding_backward(G(wte_), wpe_ >= 0 ? G(wpe_) : nullptr, dtmp_, inputs, B, T, C_, 0, Vp_,
                          emb_scale);
}

}  // namespace ph
