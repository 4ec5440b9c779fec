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
//
// Tensor parallelism (Megatron): with tp ranks, each holds n_heads/tp whole heads (its rows
// of q, k, v: column-parallel), d_ff/tp FFN columns (rows of fc: column-parallel), the
// matching columns of attn.proj and mlp.proj (row-parallel, followed by an all-reduce over
// the tp group), and Vp/tp rows of wte (vocabulary padded to a multiple of 128·tp) with a
// vocab-parallel embedding and cross-entropy. The inputs of the column-parallel GEMMs are
// identical on every tp rank and their gradients are summed over the group in backward.
// LayerNorms, wpe and row-parallel biases are replicated and get identical gradients.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "io/config.h"
#include "kernels/backend.h"
#include "model/param_table.h"
#include "parallel/communicator.h"

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

// Vocabulary rows in memory: V rounded up to a multiple of 128·tp.
int padded_vocab_size(int vocab_size, int tp);

class Gpt {
 public:
  // All memory and compute go through `backend`, which must outlive the model; parameters,
  // gradients and activations are device memory of that backend (the host reaches them only
  // through upload/download). Inputs and targets are host arrays.
  // max_batch: the largest micro-batch any call will use (sizes the activation arena).
  // tp_rank of tp, with the tensor-parallel group's communicator (may be null when tp == 1).
  // The parameter and gradient arenas are padded with zeros to a multiple of arena_multiple
  // elements (ZeRO splits them into equal data-parallel shards).
  // tp_comm carries device buffers of this backend (MPI for the CPU backend, NCCL for CUDA).
  Gpt(Backend& backend, const ModelConfig& cfg, int max_batch, int tp_rank = 0, int tp = 1,
      Communicator* tp_comm = nullptr, size_t arena_multiple = 1);

  Backend& backend() const { return be_; }

  const ModelConfig& config() const { return cfg_; }
  const ParamTable& table() const { return table_; }
  // Device pointers (see the constructor).
  float* params() { return params_.data(); }
  const float* params() const { return params_.data(); }
  float* grads() { return grads_.data(); }
  void zero_grads();
  // The whole parameter arena (arena_capacity() elements) from / to host memory.
  void upload_params(const float* host);
  void download_params(float* host) const;
  size_t arena_size() const { return table_.total(); }      // elements of all parameters
  size_t arena_capacity() const { return params_.size(); }  // with the zero padding
  int padded_vocab() const { return Vp_; }
  // Vocabulary columns of logits() held here: [vocab_start(), vocab_start() + local_vocab()).
  int local_vocab() const { return Vl_; }
  int vocab_start() const { return v0_; }
  int tp_rank() const { return tp_rank_; }
  int tp() const { return tp_; }
  Communicator* tp_comm() const { return tp_comm_; }
  // Device bytes held by the parameter, gradient and activation arenas.
  size_t memory_bytes() const;

  // Draws the initial parameters from (seed, name, global index).
  void initialize(uint64_t seed);

  // Forward over inputs [B, T] (B <= max_batch, T <= seq_len); logits() then holds
  // [B*T, local_vocab()] on the device (columns at or past vocab_size are padding).
  void forward(const int32_t* inputs, int B, int T, const DropoutContext& d);
  const float* logits() const { return logits_; }
  // Rows [row0, row0 + rows) of logits() to host memory [rows, local_vocab()].
  void download_logits(float* host, int row0, int rows) const;

  // Forward + cross-entropy. Returns the sum of token losses over targets != kIgnoreIndex and
  // their count. logits() stay valid (for accuracy metrics).
  double loss(const int32_t* inputs, const int32_t* targets, int B, int T, const DropoutContext& d,
              int64_t* counted);

  // One training micro-step: forward, loss, and backward of (dloss * sum of token losses),
  // ACCUMULATING into grads(). Returns the sum of token losses and their count.
  double forward_backward(const int32_t* inputs, const int32_t* targets, int B, int T, float dloss,
                          const DropoutContext& d, int64_t* counted);

  // Called during backward with each range (offset, count) of the gradient arena as soon as
  // it is final for this micro-step: the head and final LayerNorm, then the blocks from last
  // to first, then the embeddings. Data parallelism starts its all-reduces there, overlapping
  // them with the rest of backward. An empty function disables it.
  void set_grad_hook(std::function<void(size_t, size_t)> hook) { grad_hook_ = std::move(hook); }

 private:
  struct Layer {
    int ln1w, ln1b, qw, qb, projw, projb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb;
  };
  struct LayerActs {
    float *ln1, *ln1_mean, *ln1_rstd, *qkv, *att, *atty, *res2;
    float *ln2, *ln2_mean, *ln2_rstd, *fch, *fch_act, *res3;
  };

  float* P(int idx) { return idx >= 0 ? params_.data() + table_[idx].offset : nullptr; }
  float* G(int idx) { return idx >= 0 ? grads_.data() + table_[idx].offset : nullptr; }
  // Backward of the last forward (its tokens are still in tokens_).
  void backward(int B, int T, const DropoutContext& d);
  // Cross-entropy of logits_ into losses_; with_grad also turns logits_ into dlogits.
  void crossentropy(const int32_t* host_targets, int N, float dloss, bool with_grad);
  double sum_losses(const int32_t* host_targets, int N, int64_t* counted);
  void zero_acts(float* p, size_t n);
  void check_batch(int B, int T) const;
  // Sums x [n] over the tensor-parallel group (nothing to do when tp == 1).
  void tp_sum(float* x, size_t n);
  void grads_ready(size_t begin, size_t end);
  void build_table();
  void layout_activations();

  Backend& be_;
  ModelConfig cfg_;
  int maxB_, T_, C_, H_, F_, L_, V_, Vp_;
  int tp_rank_, tp_;
  Communicator* tp_comm_;
  int Cl_, Hl_, Fl_, Vl_, v0_;  // local attention width, heads, FFN width, vocabulary, its start
  ParamTable table_;
  int wte_ = -1, wpe_ = -1, lnfw_ = -1, lnfb_ = -1, lm_head_ = -1;
  std::vector<Layer> layers_;
  DeviceBuffer<float> params_, grads_, acts_;
  DeviceBuffer<int32_t> tokens_, targets_;  // [max_batch * T] this micro-batch's, on the device
  std::vector<float> host_losses_;
  std::function<void(size_t, size_t)> grad_hook_;

  // Activation views into acts_ (local widths under tensor parallelism).
  float* encoded_ = nullptr;    // [B*T, C] embedding output (block 0 input)
  float* pos_table_ = nullptr;  // [T, C] sinusoidal table (sinusoidal encoding only)
  std::vector<LayerActs> la_;
  float* proj_ = nullptr;  // [B*T, C] output of a row-parallel projection, before the residual
                           // add (backward regenerates its dropout mask and never reads it)
  float *lnf_ = nullptr, *lnf_mean_ = nullptr, *lnf_rstd_ = nullptr;
  float* logits_ = nullptr;  // [B*T, Vl]; holds dlogits after forward_backward
  float* losses_ = nullptr;  // [B*T]
  float *ce_max_ = nullptr, *ce_sum_ = nullptr, *ce_target_ = nullptr;  // [B*T], tp > 1
  // Backward scratch.
  float *dres_ = nullptr, *dtmp_ = nullptr, *dtmp2_ = nullptr, *dff1_ = nullptr, *dff2_ = nullptr,
        *dqkv_ = nullptr, *datt_ = nullptr;
};

}  // namespace ph
