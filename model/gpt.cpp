#include "model/gpt.h"

#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace ph {

namespace {

DropoutSpec spec(const DropoutContext& d, float p, uint32_t site) {
  DropoutSpec s;
  s.p = d.train ? p : 0.0f;
  s.seed = d.seed;
  s.step = d.step;
  s.site = site;
  return s;
}

// A full [B*T, C] activation of micro-batch samples [sample0, sample0 + B) of the global batch.
cpu::DropoutBlock rows_block(const DropoutContext& d, int T, int C) {
  cpu::DropoutBlock b;
  b.row0 = d.sample0 * T;
  b.col0 = 0;
  b.global_cols = C;
  return b;
}

}  // namespace

int padded_vocab_size(int vocab_size, int tp) {
  const int m = 128 * tp;
  return (vocab_size + m - 1) / m * m;
}

Gpt::Gpt(Backend& backend, const ModelConfig& cfg, int max_batch, int tp_rank, int tp,
         Communicator* tp_comm, size_t arena_multiple)
    : be_(backend),
      cfg_(cfg),
      maxB_(max_batch),
      T_(cfg.seq_len),
      C_(cfg.d_model),
      H_(cfg.n_heads),
      F_(cfg.ffn_width()),
      L_(cfg.n_layers),
      V_(cfg.vocab_size),
      Vp_(padded_vocab_size(cfg.vocab_size, tp)),
      tp_rank_(tp_rank),
      tp_(tp),
      tp_comm_(tp_comm) {
  if (H_ % tp != 0 || F_ % tp != 0 || (tp > 1 && !tp_comm))
    throw std::logic_error(
        "Gpt: heads and FFN width must divide by tp, and tp > 1 needs a communicator");
  Hl_ = H_ / tp;
  Cl_ = C_ / tp;  // = Hl_ * head size
  Fl_ = F_ / tp;
  Vl_ = Vp_ / tp;
  v0_ = tp_rank * Vl_;
  build_table();
  const size_t total = table_.place(tp_rank, tp);
  const size_t capacity = (total + arena_multiple - 1) / arena_multiple * arena_multiple;
  params_ = DeviceBuffer<float>(be_, capacity);
  grads_ = DeviceBuffer<float>(be_, capacity);
  layout_activations();
  tokens_ = DeviceBuffer<int32_t>(be_, static_cast<size_t>(maxB_) * T_);
  targets_ = DeviceBuffer<int32_t>(be_, static_cast<size_t>(maxB_) * T_);
  host_losses_.resize(static_cast<size_t>(maxB_) * T_);
  if (cfg_.pos_encoding == "sinusoidal") be_.sinusoidal_table(pos_table_, T_, C_);
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
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, Split s, float sd) {
    return table_.add(name, {rows, cols}, s, InitKind::Normal, sd, true);
  };
  for (int l = 0; l < L_; ++l) {
    const std::string p = "h." + std::to_string(l) + ".";
    Layer ly{};
    ly.ln1w = vec(p + "ln1.weight", C, InitKind::Ones);
    ly.ln1b = bias ? vec(p + "ln1.bias", C, InitKind::Zeros) : -1;
    // q, k, v weights adjacent, then their biases adjacent: one fused [3C, C] GEMM (per tp
    // rank: its rows of each, [3C/tp, C]).
    ly.qw = matrix(p + "attn.q.weight", C, C, Split::Dim0, std0);
    matrix(p + "attn.k.weight", C, C, Split::Dim0, std0);
    matrix(p + "attn.v.weight", C, C, Split::Dim0, std0);
    ly.qb = -1;
    if (bias) {
      ly.qb = table_.add(p + "attn.q.bias", {C}, Split::Dim0, InitKind::Zeros, 0.0f, false);
      table_.add(p + "attn.k.bias", {C}, Split::Dim0, InitKind::Zeros, 0.0f, false);
      table_.add(p + "attn.v.bias", {C}, Split::Dim0, InitKind::Zeros, 0.0f, false);
    }
    ly.projw = matrix(p + "attn.proj.weight", C, C, Split::Dim1, std_resid);
    ly.projb = bias ? vec(p + "attn.proj.bias", C, InitKind::Zeros) : -1;
    ly.ln2w = vec(p + "ln2.weight", C, InitKind::Ones);
    ly.ln2b = bias ? vec(p + "ln2.bias", C, InitKind::Zeros) : -1;
    ly.fcw = matrix(p + "mlp.fc.weight", F, C, Split::Dim0, std0);
    ly.fcb =
        bias ? table_.add(p + "mlp.fc.bias", {F}, Split::Dim0, InitKind::Zeros, 0.0f, false) : -1;
    ly.fcprojw = matrix(p + "mlp.proj.weight", C, F, Split::Dim1, std_resid);
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
  const size_t C = C_, Cl = Cl_, Fl = Fl_, att = static_cast<size_t>(maxB_) * Hl_ * T_ * T_;
  // Sizes in binding order; the second pass hands out pointers into one arena.
  const bool sinusoidal = cfg_.pos_encoding == "sinusoidal";
  std::vector<size_t> sizes = {BT * C, sinusoidal ? static_cast<size_t>(T_) * C : 0};
  for (int l = 0; l < L_; ++l)
    sizes.insert(sizes.end(), {BT * C, BT, BT, BT * 3 * Cl, att, BT * Cl, BT * C, BT * C, BT, BT,
                               BT * Fl, BT * Fl, BT * C});
  sizes.insert(sizes.end(), {BT * C, BT * C, BT, BT, BT * static_cast<size_t>(Vl_), BT, BT, BT, BT,
                             BT * C, BT * C, BT * C, BT * Fl, BT * Fl, BT * 3 * Cl, att});
  size_t total = 0;
  for (size_t s : sizes) total += s;
  acts_ = DeviceBuffer<float>(be_, total);
  float* next = acts_.data();
  size_t k = 0;
  auto at = [&]() {
    float* p = next;
    next += sizes[k++];
    return p;
  };
  encoded_ = at();
  pos_table_ = at();
  la_.resize(static_cast<size_t>(L_));
  for (LayerActs& a : la_)
    for (float** f : {&a.ln1, &a.ln1_mean, &a.ln1_rstd, &a.qkv, &a.att, &a.atty, &a.res2, &a.ln2,
                      &a.ln2_mean, &a.ln2_rstd, &a.fch, &a.fch_act, &a.res3})
      *f = at();
  for (float** f : {&proj_, &lnf_, &lnf_mean_, &lnf_rstd_, &logits_, &losses_, &ce_max_, &ce_sum_,
                    &ce_target_, &dres_, &dtmp_, &dtmp2_, &dff1_, &dff2_, &dqkv_, &datt_})
    *f = at();
}

size_t Gpt::memory_bytes() const {
  return params_.bytes() + grads_.bytes() + acts_.bytes() + tokens_.bytes() + targets_.bytes();
}

void Gpt::initialize(uint64_t seed) {
  std::vector<float> host(params_.size(), 0.0f);
  table_.initialize(host.data(), seed);
  upload_params(host.data());
}

void Gpt::upload_params(const float* host) {
  be_.upload(params_.data(), host, params_.bytes());
}

void Gpt::download_params(float* host) const {
  be_.download(host, params_.data(), params_.bytes());
}

void Gpt::download_logits(float* host, int row0, int rows) const {
  const size_t Vl = static_cast<size_t>(Vl_);
  be_.download(host, logits_ + static_cast<size_t>(row0) * Vl,
               static_cast<size_t>(rows) * Vl * sizeof(float));
}

void Gpt::zero_grads() {
  grads_.zero();
}

void Gpt::zero_acts(float* p, size_t n) {
  be_.zero(p, n * sizeof(float));
}

void Gpt::check_batch(int B, int T) const {
  if (B < 1 || B > maxB_ || T < 1 || T > T_)
    throw std::logic_error("Gpt: batch " + std::to_string(B) + " x " + std::to_string(T) +
                           " outside the arena's " + std::to_string(maxB_) + " x " +
                           std::to_string(T_));
}

void Gpt::tp_sum(float* x, size_t n) {
  if (tp_ > 1) tp_comm_->all_reduce(x, n, ReduceOp::Sum);
}

void Gpt::grads_ready(size_t begin, size_t end) {
  if (grad_hook_ && end > begin) grad_hook_(begin, end - begin);
}

void Gpt::forward(const int32_t* inputs, int B, int T, const DropoutContext& d) {
  check_batch(B, T);
  const int N = B * T;
  be_.upload(tokens_.data(), inputs, static_cast<size_t>(N) * sizeof(int32_t));
  const size_t NC = static_cast<size_t>(N) * C_;
  const bool pre = cfg_.norm == "pre";
  const bool lead = tp_rank_ == 0;  // adds replicated terms that are then summed over tp
  const float emb_scale = cfg_.embed_scale ? std::sqrt(static_cast<float>(C_)) : 1.0f;
  const float* pos =
      wpe_ >= 0 ? P(wpe_) : (cfg_.pos_encoding == "sinusoidal" ? pos_table_ : nullptr);
  // Vocab-parallel embedding: each rank looks up the tokens of its vocabulary rows.
  be_.embedding_forward(encoded_, tokens_.data(), P(wte_), lead ? pos : nullptr, B, T, C_, v0_, Vl_,
                        emb_scale);
  tp_sum(encoded_, NC);
  const cpu::DropoutBlock rows = rows_block(d, T, C_);
  be_.dropout_forward(encoded_, encoded_, N, C_, spec(d, cfg_.dropout_embed, kSiteEmbed), rows);

  cpu::AttentionCoords coords;
  coords.sample0 = d.sample0;
  coords.head0 = tp_rank_ * Hl_;
  coords.H_total = H_;
  const float* x = encoded_;
  for (int l = 0; l < L_; ++l) {
    const Layer& ly = layers_[static_cast<size_t>(l)];
    LayerActs& a = la_[static_cast<size_t>(l)];
    // Attention sub-block. Pre-norm: res2 = x + D(attn(LN1(x))); post-norm: res2 = x +
    // D(attn(x)) and ln1 = LN1(res2) is the stream that continues.
    const float* attn_in = x;
    if (pre) {
      be_.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, x, P(ly.ln1w), P(ly.ln1b), N, C_);
      attn_in = a.ln1;
    }
    be_.matmul_forward(a.qkv, attn_in, P(ly.qw), P(ly.qb), N, C_, 3 * Cl_);
    be_.attention_forward(a.atty, a.att, a.qkv, nullptr, B, T, Cl_, Hl_, true,
                          spec(d, cfg_.dropout_attn, site_attn_probs(l)), coords);
    // Row-parallel projection: partial sums over the heads held here, summed over tp; the
    // replicated bias is added once.
    be_.matmul_forward(proj_, a.atty, P(ly.projw), lead ? P(ly.projb) : nullptr, N, Cl_, C_);
    tp_sum(proj_, NC);
    be_.dropout_forward(proj_, proj_, N, C_, spec(d, cfg_.dropout_resid, site_attn_resid(l)), rows);
    be_.residual_forward(a.res2, x, proj_, NC);
    const float* mid = a.res2;
    if (!pre) {
      be_.layernorm_forward(a.ln1, a.ln1_mean, a.ln1_rstd, a.res2, P(ly.ln1w), P(ly.ln1b), N, C_);
      mid = a.ln1;
    }
    // FFN sub-block, same pattern with LN2.
    const float* ffn_in = mid;
    if (pre) {
      be_.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, mid, P(ly.ln2w), P(ly.ln2b), N, C_);
      ffn_in = a.ln2;
    }
    be_.matmul_forward(a.fch, ffn_in, P(ly.fcw), P(ly.fcb), N, C_, Fl_);
    if (cfg_.activation == "gelu")
      be_.gelu_forward(a.fch_act, a.fch, static_cast<size_t>(N) * Fl_);
    else
      be_.relu_forward(a.fch_act, a.fch, static_cast<size_t>(N) * Fl_);
    be_.matmul_forward(proj_, a.fch_act, P(ly.fcprojw), lead ? P(ly.fcprojb) : nullptr, N, Fl_, C_);
    tp_sum(proj_, NC);
    be_.dropout_forward(proj_, proj_, N, C_, spec(d, cfg_.dropout_resid, site_mlp_resid(l)), rows);
    be_.residual_forward(a.res3, mid, proj_, NC);
    x = a.res3;
    if (!pre) {
      be_.layernorm_forward(a.ln2, a.ln2_mean, a.ln2_rstd, a.res3, P(ly.ln2w), P(ly.ln2b), N, C_);
      x = a.ln2;
    }
  }
  const float* head_in = x;
  if (pre) {
    be_.layernorm_forward(lnf_, lnf_mean_, lnf_rstd_, x, P(lnfw_), P(lnfb_), N, C_);
    head_in = lnf_;
  }
  // Vocab-parallel LM head: this rank's columns of the logits.
  const float* head_w = lm_head_ >= 0 ? P(lm_head_) : P(wte_);
  be_.matmul_forward(logits_, head_in, head_w, nullptr, N, C_, Vl_);
}

void Gpt::crossentropy(const int32_t* host_targets, int N, float dloss, bool with_grad) {
  be_.upload(targets_.data(), host_targets, static_cast<size_t>(N) * sizeof(int32_t));
  const int32_t* targets = targets_.data();
  if (tp_ == 1) {
    if (with_grad)
      be_.crossentropy_fused(logits_, losses_, targets, N, V_, Vp_, kIgnoreIndex, dloss);
    else
      be_.crossentropy_forward(losses_, logits_, targets, N, V_, Vp_, kIgnoreIndex);
    return;
  }
  // Vocab-parallel: the full logits never exist on one rank.
  be_.vp_crossentropy_max(ce_max_, logits_, N, Vl_, v0_, V_);
  tp_comm_->all_reduce(ce_max_, static_cast<size_t>(N), ReduceOp::Max);
  be_.vp_crossentropy_sums(ce_sum_, ce_target_, logits_, ce_max_, targets, N, Vl_, v0_, V_,
                           kIgnoreIndex);
  tp_comm_->all_reduce(ce_sum_, static_cast<size_t>(N), ReduceOp::Sum);
  tp_comm_->all_reduce(ce_target_, static_cast<size_t>(N), ReduceOp::Sum);
  be_.vp_crossentropy_finish(losses_, with_grad ? logits_ : nullptr, logits_, ce_max_, ce_sum_,
                             ce_target_, targets, N, Vl_, v0_, V_, kIgnoreIndex, dloss);
}

double Gpt::sum_losses(const int32_t* targets, int N, int64_t* counted) {
  be_.download(host_losses_.data(), losses_, static_cast<size_t>(N) * sizeof(float));
  double sum = 0.0;
  int64_t n = 0;
  for (int i = 0; i < N; ++i)
    if (targets[i] != kIgnoreIndex) {
      sum += host_losses_[static_cast<size_t>(i)];
      ++n;
    }
  if (counted) *counted = n;
  return sum;
}

double Gpt::loss(const int32_t* inputs, const int32_t* targets, int B, int T,
                 const DropoutContext& d, int64_t* counted) {
  forward(inputs, B, T, d);
  crossentropy(targets, B * T, 0.0f, false);
  return sum_losses(targets, B * T, counted);
}

double Gpt::forward_backward(const int32_t* inputs, const int32_t* targets, int B, int T,
                             float dloss, const DropoutContext& d, int64_t* counted) {
  forward(inputs, B, T, d);
  crossentropy(targets, B * T, dloss, true);
  const double sum = sum_losses(targets, B * T, counted);
  backward(B, T, d);
  return sum;
}

void Gpt::backward(int B, int T, const DropoutContext& d) {
  const int N = B * T;
  const size_t NC = static_cast<size_t>(N) * C_;
  const size_t NF = static_cast<size_t>(N) * Fl_;
  const bool pre = cfg_.norm == "pre";
  const cpu::DropoutBlock rows = rows_block(d, T, C_);
  cpu::AttentionCoords coords;
  coords.sample0 = d.sample0;
  coords.head0 = tp_rank_ * Hl_;
  coords.H_total = H_;
  const auto begin_of = [&](int idx) { return table_[idx].offset; };

  // LM head: logits_ holds this rank's dlogits. Its input gradient is a partial sum over the
  // vocabulary shards. dres becomes d(stream after the last block).
  const float* last = L_ > 0 ? (pre ? la_.back().res3 : la_.back().ln2) : encoded_;
  const float* head_in = pre ? lnf_ : last;
  const int head_idx = lm_head_ >= 0 ? lm_head_ : wte_;
  zero_acts(dtmp_, NC);
  be_.matmul_backward(dtmp_, G(head_idx), nullptr, logits_, head_in, P(head_idx), N, C_, Vl_);
  tp_sum(dtmp_, NC);
  if (pre) {
    zero_acts(dres_, NC);
    be_.layernorm_backward(dres_, G(lnfw_), G(lnfb_), dtmp_, last, P(lnfw_), lnf_mean_, lnf_rstd_,
                           N, C_);
  } else {
    be_.copy(dres_, dtmp_, NC * sizeof(float));
  }
  // Final LayerNorm and an untied head are done (both sit after the last block).
  if (lnfw_ >= 0 || lm_head_ >= 0)
    grads_ready(begin_of(lnfw_ >= 0 ? lnfw_ : lm_head_), table_.total());

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
      zero_acts(dtmp2_, NC);
      be_.layernorm_backward(dtmp2_, G(ly.ln2w), G(ly.ln2b), dres_, a.res3, P(ly.ln2w), a.ln2_mean,
                             a.ln2_rstd, N, C_);
      be_.copy(dres_, dtmp2_, NC * sizeof(float));
    }
    // dres = d(res3). FFN branch: res3 = mid + D(fcproj).
    be_.dropout_backward(dtmp_, dres_, N, C_, spec(d, cfg_.dropout_resid, site_mlp_resid(l)), rows);
    zero_acts(dff1_, NF);
    be_.matmul_backward(dff1_, G(ly.fcprojw), G(ly.fcprojb), dtmp_, a.fch_act, P(ly.fcprojw), N,
                        Fl_, C_);
    zero_acts(dff2_, NF);
    if (cfg_.activation == "gelu")
      be_.gelu_backward(dff2_, a.fch, dff1_, NF);
    else
      be_.relu_backward(dff2_, a.fch, dff1_, NF);
    // Gradient of the FFN input: partial over the FFN columns held here, summed over tp.
    zero_acts(dtmp2_, NC);
    be_.matmul_backward(dtmp2_, G(ly.fcw), G(ly.fcb), dff2_, ffn_in, P(ly.fcw), N, C_, Fl_);
    tp_sum(dtmp2_, NC);
    if (pre) {
      // dres (= d res3 = d mid through the skip) += LN2 backward.
      be_.layernorm_backward(dres_, G(ly.ln2w), G(ly.ln2b), dtmp2_, mid, P(ly.ln2w), a.ln2_mean,
                             a.ln2_rstd, N, C_);
    } else {
      // d mid = d res3 (skip) + d(FFN input); mid = ln1 = LN1(res2).
      be_.residual_forward(dtmp2_, dtmp2_, dres_, NC);
      zero_acts(dres_, NC);
      be_.layernorm_backward(dres_, G(ly.ln1w), G(ly.ln1b), dtmp2_, a.res2, P(ly.ln1w), a.ln1_mean,
                             a.ln1_rstd, N, C_);
    }
    // dres = d(res2). Attention branch: res2 = x + D(attproj).
    be_.dropout_backward(dtmp_, dres_, N, C_, spec(d, cfg_.dropout_resid, site_attn_resid(l)),
                         rows);
    zero_acts(dtmp2_, static_cast<size_t>(N) * Cl_);
    be_.matmul_backward(dtmp2_, G(ly.projw), G(ly.projb), dtmp_, a.atty, P(ly.projw), N, Cl_, C_);
    zero_acts(dqkv_, static_cast<size_t>(N) * 3 * Cl_);
    be_.attention_backward(dqkv_, datt_, dtmp2_, a.qkv, a.att, nullptr, B, T, Cl_, Hl_, true,
                           spec(d, cfg_.dropout_attn, site_attn_probs(l)), coords);
    zero_acts(dtmp2_, NC);
    be_.matmul_backward(dtmp2_, G(ly.qw), G(ly.qb), dqkv_, attn_in, P(ly.qw), N, C_, 3 * Cl_);
    tp_sum(dtmp2_, NC);
    if (pre)
      be_.layernorm_backward(dres_, G(ly.ln1w), G(ly.ln1b), dtmp2_, x, P(ly.ln1w), a.ln1_mean,
                             a.ln1_rstd, N, C_);
    else
      be_.residual_forward(dres_, dres_, dtmp2_, NC);
    // dres = d(x), the block input. This block's gradients are final.
    const size_t end = l + 1 < L_      ? begin_of(layers_[static_cast<size_t>(l) + 1].ln1w)
                       : lnfw_ >= 0    ? begin_of(lnfw_)
                       : lm_head_ >= 0 ? begin_of(lm_head_)
                                       : table_.total();
    grads_ready(begin_of(ly.ln1w), end);
  }
  // Embedding: encoded = D(scale * wte[tok] + pos), the sum over vocabulary shards.
  be_.dropout_backward(dtmp_, dres_, N, C_, spec(d, cfg_.dropout_embed, kSiteEmbed), rows);
  const float emb_scale = cfg_.embed_scale ? std::sqrt(static_cast<float>(C_)) : 1.0f;
  be_.embedding_backward(G(wte_), G(wpe_), dtmp_, tokens_.data(), B, T, C_, v0_, Vl_, emb_scale);
  grads_ready(0, L_ > 0 ? begin_of(layers_[0].ln1w) : table_.total());
}

}  // namespace ph
