// The input embedding, vocab-parallel (Megatron): each tensor-parallel rank holds Vp/tp rows
// of the token table (the vocabulary padded to a multiple of 128·tp, padding rows zero) and
// looks up the tokens of its rows; the partial outputs are summed over the group.
//   out = D(LN(scale · wte[token] + pos[t + pos_offset] + wtt[type]))
// with learned (wpe [T_max, C]) or sinusoidal positions (a fixed table), optional token types
// (wtt [types, C]), optional LayerNorm (emb_ln) and dropout D. Positions, types and the
// LayerNorm are replicated; tensor-parallel rank 0 adds the replicated terms.
// Parameters (<p> the prefix: "", "enc.", "dec."): <p>wte [V, C] (unless tied to another
// embedding's table), <p>wpe [T_max, C] (learned), <p>wtt [types, C], <p>emb_ln.{weight,bias}.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "io/config.h"
#include "model/layer_norm.h"
#include "model/pass.h"

namespace ph {

// Vocabulary rows in memory: V rounded up to a multiple of 128·tp.
int padded_vocab_size(int vocab_size, int tp);

struct EmbeddingSpec {
  int V = 0, C = 0, T_max = 0;
  PosEncoding positions = PosEncoding::kLearned;
  bool scale = false;       // multiply token embeddings by sqrt(C)
  int token_types = 0;      // 0: none
  bool layer_norm = false;  // emb_ln after the sum
  bool bias = true;         // of the LayerNorm
  float ln_eps = 1e-5f;     // of the LayerNorm
  float init_std = 0.02f;
  Dropout dropout;
  int max_batch = 0;
  int tied_wte = -1;  // >= 0: the token table is this existing parameter (of V rows, padded)
};

class VocabParallelEmbedding : public Block {
 public:
  VocabParallelEmbedding(ModelCore& core, const std::string& prefix, const EmbeddingSpec& spec);

  // Fills the sinusoidal table; call once the activation arena exists.
  void prepare();

  // The embedding of tokens [B*T] (device), with types [B*T] (device; only with token types) and
  // positions starting at pos_offset (pos_offset + T <= T_max). Returns the output [B*T, C].
  const float* forward(const int32_t* tokens, const int32_t* types, const Pass& pass,
                       int pos_offset = 0);
  // Parameter gradients from dout [B*T, C], the gradient of the output.
  void backward(const float* dout, const int32_t* tokens, const int32_t* types, const Pass& pass,
                int pos_offset = 0);

  int wte() const { return wte_; }  // the token table, for a tied LM head
  int padded_vocab() const { return Vp_; }
  int local_vocab() const { return Vl_; }  // rows held here
  int vocab_start() const { return v0_; }  // the first of them

 private:
  const float* positions(int pos_offset) const;

  EmbeddingSpec spec_;
  int Vp_, Vl_, v0_;
  float scale_;
  int wte_ = -1, wpe_ = -1, wtt_ = -1;
  std::unique_ptr<LayerNorm> ln_;
  float* sum_ = nullptr;    // the sum before the LayerNorm (and the output without one)
  float* table_ = nullptr;  // sinusoidal positions [T_max, C]
  float* types_ = nullptr;  // scratch: the token-type rows
  float *dy_ = nullptr, *dsum_ = nullptr;  // scratch
};

}  // namespace ph
