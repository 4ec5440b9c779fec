#include "model/attention.h"

#include <stdexcept>
#include <string>

namespace ph {

namespace {

size_t sz(int64_t v) {
  return static_cast<size_t>(v);
}

// Where this rank's heads and the micro-batch's samples sit in the unsharded probabilities.
AttentionCoords coords_of(const AttentionSpec& s, const Pass& pass, int head0) {
  AttentionCoords c;
  c.sample0 = pass.sample0;
  c.head0 = head0;
  c.H_total = s.H;
  c.Tq_max = s.probs.T_max;
  c.Tk_max = s.Tk_max;
  return c;
}

void check_heads(const AttentionSpec& s, int tp) {
  if (s.H % tp != 0 || s.C % s.H != 0)
    throw std::logic_error("attention: heads must divide the width and the tensor-parallel size");
}

void check_packable(const AttentionSpec& s, const Pass& pass) {
  if (pass.is_packed() && !s.packed_rows)
    throw std::logic_error("attention: a packed pass to a block not planned for packing");
}

}  // namespace

SelfAttention::SelfAttention(ModelCore& core, const std::string& prefix, const AttentionSpec& spec)
    : Block(core),
      spec_((check_heads(spec, core.tp().size), spec)),
      Cl_(spec.C / core.tp().size),
      Hl_(spec.H / core.tp().size),
      qkv_(core, {prefix + "q", prefix + "k", prefix + "v"}, spec.C, spec.C, spec.bias,
           spec.init_std, spec.max_batch * spec.probs.T_max),
      proj_(core, prefix + "proj", spec.C, spec.C, spec.bias, spec.proj_std,
            spec.max_batch * spec.probs.T_max) {
  adopt(qkv_);
  adopt(proj_);
  const size_t rows = sz(spec.max_batch) * sz(spec.probs.T_max);
  const size_t probs = sz(spec.max_batch) * sz(Hl_) * sz(spec.probs.T_max) * sz(spec.Tk_max);
  ActivationPlan& plan = core.plan();
  plan.own(&qkv_out_, rows * 3 * sz(Cl_));
  plan.own(&att_, probs);
  plan.own(&ctx_, rows * sz(Cl_));
  plan.shared(&dctx_, "attention.dctx", rows * sz(Cl_));
  plan.shared(&dqkv_, "attention.dqkv", rows * 3 * sz(Cl_));
  plan.shared(&datt_, "attention.datt", probs);
  if (spec.packed_rows) {
    plan.shared(&pad_qkv_, "attention.pad.q", rows * 3 * sz(Cl_));
    plan.shared(&pad_dqkv_, "attention.pad.dq", rows * 3 * sz(Cl_));
    plan.shared(&pad_ctx_, "attention.pad.ctx", rows * sz(Cl_));
  }
  if (spec.select_rows) {  // one layer of a model selects: its context outlives the forward
    plan.shared(&sel_ctx_, "attention.sel.ctx", rows * sz(Cl_));
    plan.shared(&sel_dctx_, "attention.sel.dctx", rows * sz(Cl_));
  }
  if (spec.probs.p > 0.0f) be().reserve_attention(probs);  // dropout scratch (CUDA)
}

AttentionDims SelfAttention::dims(const Pass& pass, const int32_t* key_len) const {
  AttentionDims d;
  d.B = pass.B;
  d.Tq = d.Tk = pass.T;
  d.C = Cl_;
  d.H = Hl_;
  d.ldq = d.ldkv = 3 * Cl_;
  d.causal = spec_.causal;
  d.key_len = key_len;
  d.q_len = pass.packed.len;  // packed: the padding queries are skipped
  return d;
}

void SelfAttention::forward(float* y, const float* x, const Pass& pass, const int32_t* key_len,
                            const Packing* out) {
  check_packable(spec_, pass);
  if (out && (!spec_.select_rows || pass.is_packed()))
    throw std::logic_error(
        "attention: output rows need a block planned for them and an unpacked pass");
  const int N = pass.rows();
  qkv_.forward(qkv_out_, x, N);
  AttentionDims d = dims(pass, key_len);
  if (out) d.q_rows = out->unpack;  // the other queries' context is not read
  const AttentionCoords c = coords_of(spec_, pass, tp().rank * Hl_);
  if (!pass.is_packed()) {
    be().attention_forward(ctx_, att_, qkv_out_, qkv_out_ + Cl_, d, spec_.probs.spec(pass), c);
  } else {  // padding rows of q, k, v are zero; their outputs are dropped
    const Packing& p = pass.packed;
    be().gather_rows(pad_qkv_, qkv_out_, p.unpack, pass.padded_rows(), 3 * Cl_);
    be().attention_forward(pad_ctx_, att_, pad_qkv_, pad_qkv_ + Cl_, d, spec_.probs.spec(pass), c);
    be().gather_rows(ctx_, pad_ctx_, p.pack, N, Cl_);
  }
  if (out) {
    be().gather_rows(sel_ctx_, ctx_, out->pack, out->N, Cl_);
    proj_.forward(y, sel_ctx_, out->N);
  } else {
    proj_.forward(y, ctx_, N);
  }
}

void SelfAttention::backward(float* dx, const float* dy, const float* x, const Pass& pass,
                             const int32_t* key_len, const Packing* out) {
  const int N = pass.rows();
  AttentionDims d = dims(pass, key_len);
  if (out) d.q_rows = out->unpack;
  const AttentionCoords c = coords_of(spec_, pass, tp().rank * Hl_);
  if (out) {  // the other rows' context gradient is zero
    proj_.backward(sel_dctx_, dy, sel_ctx_, out->N);
    be().gather_rows(dctx_, sel_dctx_, out->unpack, N, Cl_);
  } else {
    proj_.backward(dctx_, dy, ctx_, N);
  }
  if (!pass.is_packed()) {
    be().zero(dqkv_, sz(N) * 3 * sz(Cl_) * sizeof(float));
    be().attention_backward(dqkv_, dqkv_ + Cl_, datt_, dctx_, qkv_out_, qkv_out_ + Cl_, att_, d,
                            spec_.probs.spec(pass), c);
  } else {  // the padding rows' output gradient is zero: they add nothing to the real rows
    const Packing& p = pass.packed;
    const int Np = pass.padded_rows();
    be().gather_rows(pad_ctx_, dctx_, p.unpack, Np, Cl_);
    be().gather_rows(pad_qkv_, qkv_out_, p.unpack, Np, 3 * Cl_);
    be().zero(pad_dqkv_, sz(Np) * 3 * sz(Cl_) * sizeof(float));
    be().attention_backward(pad_dqkv_, pad_dqkv_ + Cl_, datt_, pad_ctx_, pad_qkv_, pad_qkv_ + Cl_,
                            att_, d, spec_.probs.spec(pass), c);
    be().gather_rows(dqkv_, pad_dqkv_, p.pack, N, 3 * Cl_);
  }
  qkv_.backward(dx, dqkv_, x, N);
}

void SelfAttention::step(float* y, const float* x, const DecodeStep& s, float* const cache[2]) {
  float* old = cache[s.pos % 2];
  float* now = cache[(s.pos + 1) % 2];
  qkv_.forward_names(qkv_out_, x, s.n, 0, 1);  // q [n, Cl]
  // k | v of the new positions [n, 2Cl], after the old rows
  const int prev_n = s.prev_n > 0 ? s.prev_n : s.n;
  qkv_.forward_names(old + sz(prev_n) * sz(s.pos) * 2 * sz(Cl_), x, s.n, 1, 2);
  be().gather_rows(now, old, s.gather, s.n * (s.pos + 1), 2 * Cl_);
  AttentionDims d;
  d.B = s.n;
  d.Tq = 1;
  d.Tk = s.pos + 1;
  d.C = Cl_;
  d.H = Hl_;
  d.ldq = Cl_;
  d.ldkv = 2 * Cl_;
  be().attention_forward(ctx_, att_, qkv_out_, now, d, DropoutSpec{}, AttentionCoords{});
  proj_.forward(y, ctx_, s.n);
}

bool folding_pays(int Tk, int beams, int head_size) {
  return beams >= 2 && Tk >= 1 &&
         4 * static_cast<int64_t>(beams) * Tk <= static_cast<int64_t>(beams - 1) * head_size;
}

CrossAttention::CrossAttention(ModelCore& core, const std::string& prefix,
                               const AttentionSpec& spec)
    : Block(core),
      spec_((check_heads(spec, core.tp().size), spec)),
      Cl_(spec.C / core.tp().size),
      Hl_(spec.H / core.tp().size),
      q_(core, {prefix + "q"}, spec.C, spec.C, spec.bias, spec.init_std,
         spec.max_batch * spec.probs.T_max),
      kv_(core, {prefix + "k", prefix + "v"}, spec.C, spec.C, spec.bias, spec.init_std,
          spec.max_batch * spec.Tk_max),
      proj_(core, prefix + "proj", spec.C, spec.C, spec.bias, spec.proj_std,
            spec.max_batch * spec.probs.T_max) {
  adopt(q_);
  adopt(kv_);
  adopt(proj_);
  const size_t rows = sz(spec.max_batch) * sz(spec.probs.T_max);
  const size_t keys = sz(spec.max_batch) * sz(spec.Tk_max);
  const size_t probs = sz(spec.max_batch) * sz(Hl_) * sz(spec.probs.T_max) * sz(spec.Tk_max);
  ActivationPlan& plan = core.plan();
  plan.own(&q_out_, rows * sz(Cl_));
  plan.own(&kv_out_, keys * 2 * sz(Cl_));
  plan.own(&att_, probs);
  plan.own(&ctx_, rows * sz(Cl_));
  plan.shared(&dctx_, "attention.dctx", rows * sz(Cl_));
  plan.shared(&dq_, "attention.dq", rows * sz(Cl_));
  plan.shared(&dkv_, "attention.dkv", keys * 2 * sz(Cl_));
  plan.shared(&datt_, "attention.datt", probs);
  if (spec.packed_rows) {
    plan.shared(&pad_q_, "attention.pad.q", rows * sz(Cl_));
    plan.shared(&pad_dq_, "attention.pad.dq", rows * sz(Cl_));
    plan.shared(&pad_ctx_, "attention.pad.ctx", rows * sz(Cl_));
    plan.shared(&pad_kv_, "attention.pad.kv", keys * 2 * sz(Cl_));
    plan.shared(&pad_dkv_, "attention.pad.dkv", keys * 2 * sz(Cl_));
  }
  if (spec.probs.p > 0.0f) be().reserve_attention(probs);  // dropout scratch (CUDA)
}

AttentionDims CrossAttention::dims(const Pass& pass, const Memory& mem) const {
  AttentionDims d;
  d.B = pass.B;
  d.Tq = pass.T;
  d.Tk = mem.Tk;
  d.C = Cl_;
  d.H = Hl_;
  d.ldq = Cl_;
  d.ldkv = 2 * Cl_;
  d.causal = false;
  d.key_len = mem.key_len;
  d.q_len = pass.packed.len;
  return d;
}

void CrossAttention::forward(float* y, const float* x, const Pass& pass, const Memory& mem) {
  if (mem.Tk < 0 || mem.Tk > spec_.Tk_max)
    throw std::logic_error("CrossAttention: a memory of " + std::to_string(mem.Tk) +
                           " positions exceeds the " + std::to_string(spec_.Tk_max) + " planned");
  check_packable(spec_, pass);
  if (pass.is_packed() != (mem.packed.pack != nullptr))
    throw std::logic_error("CrossAttention: a pass and its memory must both be packed or not");
  const int N = pass.rows();
  q_.forward(q_out_, x, N);
  kv_.forward(kv_out_, mem.x, mem.rows(pass.B));
  const AttentionDims d = dims(pass, mem);
  const AttentionCoords c = coords_of(spec_, pass, tp().rank * Hl_);
  if (!pass.is_packed()) {
    be().attention_forward(ctx_, att_, q_out_, kv_out_, d, spec_.probs.spec(pass), c);
  } else {
    be().gather_rows(pad_q_, q_out_, pass.packed.unpack, pass.padded_rows(), Cl_);
    be().gather_rows(pad_kv_, kv_out_, mem.packed.unpack, pass.B * mem.Tk, 2 * Cl_);
    be().attention_forward(pad_ctx_, att_, pad_q_, pad_kv_, d, spec_.probs.spec(pass), c);
    be().gather_rows(ctx_, pad_ctx_, pass.packed.pack, N, Cl_);
  }
  proj_.forward(y, ctx_, N);
}

void CrossAttention::backward(float* dx, const float* dy, const float* x, const Pass& pass,
                              const Memory& mem) {
  const int N = pass.rows(), Nk = mem.rows(pass.B);
  const AttentionDims d = dims(pass, mem);
  const AttentionCoords c = coords_of(spec_, pass, tp().rank * Hl_);
  proj_.backward(dctx_, dy, ctx_, N);
  if (!pass.is_packed()) {
    be().zero(dq_, sz(N) * sz(Cl_) * sizeof(float));
    be().zero(dkv_, sz(Nk) * 2 * sz(Cl_) * sizeof(float));
    be().attention_backward(dq_, dkv_, datt_, dctx_, q_out_, kv_out_, att_, d,
                            spec_.probs.spec(pass), c);
  } else {
    const int Np = pass.padded_rows(), Nkp = pass.B * mem.Tk;
    be().gather_rows(pad_ctx_, dctx_, pass.packed.unpack, Np, Cl_);
    be().gather_rows(pad_q_, q_out_, pass.packed.unpack, Np, Cl_);
    be().gather_rows(pad_kv_, kv_out_, mem.packed.unpack, Nkp, 2 * Cl_);
    be().zero(pad_dq_, sz(Np) * sz(Cl_) * sizeof(float));
    be().zero(pad_dkv_, sz(Nkp) * 2 * sz(Cl_) * sizeof(float));
    be().attention_backward(pad_dq_, pad_dkv_, datt_, pad_ctx_, pad_q_, pad_kv_, att_, d,
                            spec_.probs.spec(pass), c);
    be().gather_rows(dq_, pad_dq_, pass.packed.pack, N, Cl_);
    be().gather_rows(dkv_, pad_dkv_, mem.packed.pack, Nk, 2 * Cl_);
  }
  kv_.backward(mem.dx, dkv_, mem.x, Nk, /*reduce=*/false);
  q_.backward(dx, dq_, x, N);
}

FoldedCrossDims CrossAttention::fold_dims(int B, int Tk) const {
  FoldedCrossDims d;
  d.B = B;
  d.Tk = Tk;
  d.C = spec_.C;
  d.Cout = spec_.C;
  d.H = Hl_;
  d.hs = Cl_ / Hl_;
  d.ldkv = 2 * Cl_;
  return d;
}

void CrossAttention::memory_kv(float* kv, const Memory& mem, int B, float* folded) {
  kv_.forward(kv, mem.x, B * mem.Tk);
  if (folded)
    be().fold_cross_memory(folded, kv, P(q_.weight()), P(q_.bias()), P(proj_.weight()),
                           fold_dims(B, mem.Tk));
}

void CrossAttention::step(float* y, const float* x, const DecodeStep& s, const float* kv,
                          const float* folded) {
  if (folded) {  // the output projection's partial sums, reduced as RowParallelLinear's
    FoldedCrossDims d = fold_dims(s.n / s.beams, s.mem->Tk);
    d.beams = s.beams;
    d.key_len = s.mem->key_len;
    d.sources = s.folded_sources;
    d.source = s.folded_source;
    be().folded_cross_attention(y, x, folded, tp().lead() ? P(proj_.bias()) : nullptr, d);
    reduce_from_tp_region(tp(), y, sz(s.n) * sz(spec_.C));
    return;
  }
  q_.forward(q_out_, x, s.n);
  AttentionDims d;
  d.B = s.n / s.beams;
  d.Tq = s.beams;
  d.Tk = s.mem->Tk;
  d.C = Cl_;
  d.H = Hl_;
  d.ldq = Cl_;
  d.ldkv = 2 * Cl_;
  d.key_len = s.mem->key_len;
  be().attention_forward(ctx_, att_, q_out_, kv, d, DropoutSpec{}, AttentionCoords{});
  proj_.forward(y, ctx_, s.n);
}

}  // namespace ph
