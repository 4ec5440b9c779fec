// GPT-style decoder (Radford et al. 2019; options give the original Transformer's choices):
// token + position embedding, L causal transformer layers (pre- or post-norm), and an LM head
// tied to the token embedding by default. A composition of the shared blocks.
//
// Parameter names and shapes (PyTorch orientation [out, in]; see the blocks' headers): wte [V,
// d], wpe [T, d] (learned positions), h.{i}.ln1.*, h.{i}.attn.{q,k,v,proj}.*, h.{i}.ln2.*,
// h.{i}.mlp.{fc,proj}.*, lnf.* (pre-norm only), lm_head.weight [V, d] (untied only).
#pragma once
#include <memory>

#include "model/embedding.h"
#include "model/lm_head.h"
#include "model/model.h"
#include "model/transformer_stack.h"

namespace ph {

class GptDecoder;

class Gpt final : public Model {
 public:
  Gpt(Backend& be, const ModelConfig& cfg, const ModelSetup& setup);

  void forward(const Batch& batch, const DropoutContext& d) override;
  float* logits() const override { return head_.logits(); }

  // Incremental decoding with a key/value cache (model/gpt_decoder.h) of up to max_sequences
  // sequences (<= max_batch * seq_len of the setup).
  std::unique_ptr<GptDecoder> incremental_decoder(int max_sequences);

 private:
  friend class GptDecoder;

  void backward(const Batch& batch, const DropoutContext& d) override;

  VocabParallelEmbedding embed_;
  TransformerStack stack_;
  LmHead head_;
  const int32_t* tokens_ = nullptr;  // of the last forward (device)
  const float* out_ = nullptr;       // the stack's output in the last forward
  float* dstream_ = nullptr;         // backward: the gradient of the residual stream
  float* dhead_ = nullptr;           // backward: the gradient of the stack's output
};

}  // namespace ph
