// One transformer layer: self-attention, optionally cross-attention over a memory (the
// decoder of an encoder-decoder), and the FFN, each a residual sublayer (pre- or post-norm).
//
// LayerNorms are named by position: ln1 around self-attention, then ln2 around the next
// sublayer and ln3 around the third (GPT and encoders: ln1, ln2; a decoder with
// cross-attention: ln1 self, ln2 cross, ln3 FFN). Parameters (<p> e.g. "h.0."):
// <p>ln1.*, <p>attn.*, [<p>ln2.*, <p>cross.*,] <p>ln{2,3}.*, <p>mlp.* — in that arena order.
#pragma once
#include <memory>
#include <string>

#include "kernels/common/rng_streams.h"
#include "model/attention.h"
#include "model/mlp.h"
#include "model/residual_branch.h"

namespace ph {

struct LayerSpec {
  int C = 0, H = 0, F = 0;
  Norm norm = Norm::kPre;
  Activation activation = Activation::kGelu;
  bool bias = true;
  float ln_eps = 1e-5f;  // of every LayerNorm
  bool causal = false;   // of self-attention
  bool cross = false;    // cross-attention over a memory
  float init_std = 0.02f;
  float proj_std = 0.02f;  // the projections that end a residual branch
  float dropout_attn = 0.0f, dropout_resid = 0.0f;
  rng::DropoutStack stack = rng::DropoutStack::kMain;  // dropout sites of this stack
  int T_max = 0;                                       // positions per sample at most
  int Tk_max = 0;            // memory positions per sample at most (cross-attention)
  int max_batch = 0;         // samples per micro-batch at most
  bool packed_rows = false;  // passes may be packed (model/pass.h; AttentionSpec::packed_rows)
  bool select_rows = false;  // forward may be given output rows (TransformerLayer::forward)
};

// A layer's keys and values during incremental decoding (SelfAttention::step,
// CrossAttention::step).
struct LayerCache {
  float* self[2] = {nullptr, nullptr};  // self-attention caches, each [n, T_max, 2C/tp] at most
  const float* cross = nullptr;         // [sources * Tk, 2C/tp] the memory's keys and values
  const float* folded = nullptr;        // the memory folded (CrossAttention::memory_kv), or null
};

class TransformerLayer : public Block {
 public:
  // `index`: the layer's place in its stack (dropout sites).
  TransformerLayer(ModelCore& core, const std::string& prefix, int index, const LayerSpec& spec);

  // The layer's output stream for x [N, C] (a buffer of the layer). key_len [B] (device, may be
  // null): the visible length of each sample for self-attention. mem: the memory of
  // cross-attention (required exactly when the layer has one). out (layers without
  // cross-attention, planned with select_rows, an unpacked pass): the output holds only the
  // rows out->packed selects from pass's [B*T]; self-attention still reads every row, the
  // rest of the layer runs on the selected ones (the last layer of BERT, whose heads read a
  // few positions).
  const float* forward(const float* x, const Pass& pass, const int32_t* key_len, const Memory* mem,
                       const Pass* out = nullptr);
  // dstream: the gradient of the output on entry (with `out`, of its rows), of x on exit (room
  // for N rows). Cross-attention adds this rank's partial gradient of the memory to mem->dx.
  void backward(float* dstream, const float* x, const Pass& pass, const int32_t* key_len,
                const Memory* mem, const Pass* out = nullptr);
  // Incremental decoding (causal layers): the layer's output stream [n, C] for x [n, C] at one
  // new position per hypothesis.
  const float* step(const float* x, const DecodeStep& s, const LayerCache& cache);
  // kv [B*mem.Tk, 2C/tp]: the keys and values of cross-attention over mem's B samples; with
  // `folded`, also the folded memory (CrossAttention::memory_kv).
  void memory_kv(float* kv, const Memory& mem, int B, float* folded = nullptr);
  // Floats of the folded memory of B samples of Tk keys (a layer with cross-attention).
  size_t folded_floats(int B, int Tk) const;

 private:
  LayerNorm ln_attn_;
  SelfAttention attn_;
  ResidualBranch attn_branch_;
  std::unique_ptr<LayerNorm> ln_cross_;
  std::unique_ptr<CrossAttention> cross_;
  std::unique_ptr<ResidualBranch> cross_branch_;
  LayerNorm ln_ffn_;
  Mlp mlp_;
  ResidualBranch ffn_branch_;
  const float* after_attn_ = nullptr;   // stream after self-attention (input of the next)
  const float* after_cross_ = nullptr;  // stream after cross-attention (input of the FFN)
};

}  // namespace ph
