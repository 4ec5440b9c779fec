// A stack of transformer layers <prefix>h.{i}. and, for pre-norm stacks, the final LayerNorm
// <prefix>lnf (post-norm layers end in a LayerNorm already).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "model/transformer_layer.h"

namespace ph {

class TransformerStack : public Block {
 public:
  // prefix: "" (GPT), "enc." or "dec.".
  TransformerStack(ModelCore& core, const std::string& prefix, int n_layers, const LayerSpec& spec);

  // The stack's output for x [N, C] (a buffer of the stack, valid until the next forward).
  // out: the output holds only these rows of pass (TransformerLayer::forward's `out`, in the
  // last layer; the stack planned with select_rows).
  const float* forward(const float* x, const Pass& pass, const int32_t* key_len, const Memory* mem,
                       const Pass* out = nullptr);
  // dstream [N, C] receives the gradient of x, from dout [N, C] (out->rows() rows with the
  // forward's `out`, the same here), the gradient of the output (dout may be scratch the layers
  // reuse). Each layer's parameters are released to the gradient-readiness tracker as soon as
  // its backward is done.
  void backward(float* dstream, const float* dout, const Pass& pass, const int32_t* key_len,
                const Memory* mem, const Pass* out = nullptr);

  // Incremental decoding: the stack's output [n, C] for x [n, C] at one new position per
  // hypothesis; caches[l] are layer l's.
  const float* step(const float* x, const DecodeStep& s, const std::vector<LayerCache>& caches);
  // kv[l] [B*mem.Tk, 2C/tp]: layer l's cross-attention keys and values over mem; with `folded`,
  // folded[l] receives layer l's folded memory (CrossAttention::memory_kv).
  void memory_kv(const std::vector<float*>& kv, const Memory& mem, int B,
                 const std::vector<float*>* folded = nullptr);
  // Floats of the folded memory of B samples of Tk keys in each layer.
  size_t folded_floats(int B, int Tk) const { return layers_.at(0)->folded_floats(B, Tk); }
  int depth() const { return static_cast<int>(layers_.size()); }

 private:
  int C_;
  std::vector<std::unique_ptr<TransformerLayer>> layers_;
  std::unique_ptr<LayerNorm> final_ln_;
  std::vector<const float*> inputs_;  // of each layer in the last forward
  const float* last_ = nullptr;       // output of the last layer
};

}  // namespace ph
