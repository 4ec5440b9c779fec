// GPT-style decoder (Radford et al. 2019; options for the original Transformer's choices):
// token + position embedding, L blocks of masked multi-head attention and a position-wise
// FFN with residual connections and LayerNorm (pre or post), and an LM head (tied to the
// token embedding by default). Parameters, gradients and activations live in arenas sized
// once at construction for a maximum micro-batch; forward and backward allocate nothing.
//
// Parameter names and shapes (PyTorch orientation [out, in]; see DESIGN.md):
//   wte [V, d], wpe [T, d] (learned positions), h.{i}.ln1.{weight,bias} [d],
//   h.{i}.attn.{q,k,v}.weight [d, d], h.{i}.attn.{q,k,v}.bias [d], h.{i}.attn.proj.weight
//   [d, d], .bias [d], h.{i}.ln2.{weight,bias} [d], h.{i}.mlp.fc.weight [f, d], .bias [f],
//   h.{i}.mlp.proj.weight [d, f], .bias [d], lnf.{weight,bias} [d] (pre-norm only),
//   lm_head.weight [V, d] (untied only).
// q, k, v are adjacent in the arena so that they form one [3d, d] matrix for a single GEMM.
#pragma once
#include <cstdint>
#include <vector>

#include "io/config.h"
#include "model/arena.h"
#include "model/param_table.h"

namespace ph {

// What makes this forward pass's dropout masks unique and layout-independent.
struct DropoutContext {
  bool train = false;  // false: no dropout anywhere (eval, sampling)
  uint64_t seed = 0;
  uint32_t step = 0;    // optimizer step
  int64_t sample0 = 0;  // index in the global batch of this micro-batch's first sample
};

// Dropout site ids (DropoutSpec::site).
constexpr uint32_t kSiteEmbed = 1;
inline uint32_t site_attn_probs(int layer) {
  return 16u + 4u * static_cast<uint32_t>(layer);
}
inline uint32_t site_attn_resid(int layer) {
  return 17u + 4u * static_cast<uint32_t>(layer);
}
inline uint32_t site_mlp_resid(int layer) {
  return 18u + 4u * static_cast<uint32_t>(layer);
}

constexpr int32_t kIgnoreIndex = -1;

class Gpt {
 public:
  // max_batch: the largest micro-batch any call will use (sizes the activation arena).
  Gpt(const ModelConfig& cfg, int max_batch);

  const ModelConfig& config() const { return cfg_; }
  const ParamTable& table() const { return table_; }
  float* params() { return params_.data(); }
  const float* params() const { return params_.data(); }
  float* grads() { return grads_.data(); }
  size_t arena_size() const { return table_.total(); }
  int padded_vocab() const { return Vp_; }
  int max_batch() const { return maxB_; }
  // Bytes held by the parameter, gradient and activation arenas.
  size_t memory_bytes() const;

  // Draws the initial parameters from (seed, name, global index).
  void initialize(uint64_t seed) { table_.initialize(params_.data(), seed); }

  // Forward over inputs [B, T] (B <= max_batch, T <= seq_len); logits() then holds
  // [B*T, padded_vocab] (columns >= vocab_size are padding).
  void forward(const int32_t* inputs, int B, int T, const DropoutContext& d);
  const float* logits() const { return logits_; }

  // Forward + cross-entropy. Returns the sum of token losses over targets != kIgnoreIndex and
  // their count. logits() stay valid (for accuracy metrics).
  double loss(const int32_t* inputs, const int32_t* targets, int B, int T, const DropoutContext& d,
              int64_t* counted);

  // One training micro-step: forward, loss, and backward of (dloss * sum of token losses),
  // ACCUMULATING into grads(). Returns the sum of token losses and their count.
  double forward_backward(const int32_t* inputs, const int32_t* targets, int B, int T, float dloss,
                          const DropoutContext& d, int64_t* counted);

 private:
  struct Layer {
    int ln1w, ln1b, qw, qb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
  };
  struct LayerActs {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *attproj, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_act, *fcproj, *res3;
  };

  float* P(int idx) { return params_.data() + table_[idx].offset; }
  float* G(int idx) { return grads_.data() + table_[idx].offset; }
  void backward(const int32_t* inputs, int B, int T, const DropoutContext& d);
  // Sum of losses_ over the N targets that are not ignored, and their count.
  double sum_losses(const int32_t* targets, int N, int64_t* counted) const;
  void build_table();
  void layout_activations();

  ModelConfig cfg_;
  int maxB_, T_, C_, H_, F_, L_, V_, Vp_;
  ParamTable table_;
  int wte_ = -1, wpe_ = -1, lnfw_ = -1, lnfb_ = -1, lm_head_ = -1;
  std::vector<Layer> layers_;
  Arena params_, grads_, acts_;

  // Activation views into acts_.
  float* encoded_ = nullptr;    // [B*T, C] embedding output (block 0 input)
  float* pos_table_ = nullptr;  // [T, C] sinusoidal table (sinusoidal encoding only)
  std::vector<LayerActs> la_;
  float *lnf_ = nullptr, *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr;
  float* logits_ = nullptr;  // [B*T, Vp]; holds dlogits after forward_backward
  float* losses_ = nullptr;  // [B*T]
  // Backward scratch.
  float *dres_ = nullptr, *dtmp_ = nullptr, *dtmp2_ = nullptr, *dff1_ = nullptr, *dff2_ = nullptr,
        *dqkv_ = nullptr, *datt_ = nullptr;
};

}  // namespace ph
