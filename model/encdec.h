// The encoder-decoder Transformer (Vaswani et al. 2017), a composition of the shared blocks:
// the source embedding and a bidirectional encoder over Batch::source (keys past each sample's
// source length are masked), the target embedding and a causal decoder over Batch::tokens whose
// layers cross-attend to the encoder's output (the same key lengths), and a vocab-parallel
// output layer. model.share_embeddings ties the tables as Marian's --tied-embeddings(-all).
//
// Parameter names and shapes (PyTorch orientation [out, in]; see the blocks' headers), in arena
// order; a tied tensor is stored once, under the first of its names:
//   enc.wte [V, d]; enc.wpe [S, d] (learned positions);
//   enc.h.{i}.ln1.*, enc.h.{i}.attn.{q,k,v,proj}.*, enc.h.{i}.ln2.*, enc.h.{i}.mlp.{fc,proj}.*;
//   enc.lnf.* (pre-norm only);
//   dec.wte [V, d] (share_embeddings none or tgt_out); dec.wpe [T, d] (learned positions);
//   dec.h.{i}.ln1.*, dec.h.{i}.attn.*, dec.h.{i}.ln2.*, dec.h.{i}.cross.{q,k,v,proj}.*,
//   dec.h.{i}.ln3.*, dec.h.{i}.mlp.*; dec.lnf.* (pre-norm only);
//   lm_head.weight [V, d] (share_embeddings none only).
//
// Tensor parallelism: the heads of self- and cross-attention and the FFN are sharded, the
// embeddings and the loss are vocab-parallel. Every decoder layer adds its partial gradient of
// the encoder output; the sum over the tensor-parallel group is taken once, before the
// encoder's backward. Dropout sites (kernels/common/rng_streams.h): the source embedding
// kSiteEncoderEmbed, the encoder stack kEncoder, the target embedding kSiteEmbed, the decoder
// stack kMain, cross-attention kCross.
#pragma once
#include <memory>
#include <vector>

#include "model/embedding.h"
#include "model/incremental_decoder.h"
#include "model/lm_head.h"
#include "model/model.h"
#include "model/transformer_stack.h"

namespace ph {

// The target positions of sample i of a batch that a packed training step computes: up to its
// last counted target (later positions add nothing to the loss).
int computed_target_positions(const Batch& b, int i);

class EncDec final : public Model {
 public:
  EncDec(Backend& be, const ModelConfig& cfg, const ModelSetup& setup);

  // Reads the source side of the batch: 1 <= batch.S <= source_len(), source [B*S] and
  // source_lengths [B] in [1, S] (std::logic_error otherwise).
  void forward(const Batch& batch, const DropoutContext& d) override;
  float* logits() const override { return head_.logits(); }

  int source_len() const { return S_; }  // S, the configured source length
  // The source and target rows the layers of the last forward ran on: the real positions
  // after a packed training step (ModelSetup::pack_rows), else every padded position.
  int source_rows() const { return enc_.rows(); }
  int target_rows() const { return dec_.rows(); }

  // Incremental decoding (model/incremental_decoder.h) of up to max_sources sources with up to
  // max_beams hypotheses each: needs max_sources <= the setup's max_batch and max_sources *
  // max_beams <= max_batch * seq_len (it runs in this model's activation arena; it allocates its
  // caches once, here). Using it overwrites the state of the model's last forward. The decoder
  // holds a reference to this model and must not outlive it. `folding`: whether each start()
  // folds cross-attention into its memory (model/attention.h, CrossFolding).
  std::unique_ptr<IncrementalDecoder> incremental_decoder(
      int max_sources, int max_beams, CrossFolding folding = CrossFolding::kAuto);

 private:
  friend class EncDecDecoder;

  void backward(const Batch& batch, const DropoutContext& d) override;
  size_t side_buffer_bytes() const override {
    return source_.bytes() + lengths_.bytes() + src_maps_.bytes() + tgt_maps_.bytes() +
           tgt_lengths_.bytes();
  }
  const std::vector<int32_t>* packed_targets() const override {
    return dec_.is_packed() ? &packed_targets_ : nullptr;
  }
  void check_source(const Batch& batch) const;
  // Packs enc_ and dec_ (real source positions, and target positions up to each sample's last
  // counted target): the maps uploaded, the targets of the packed decoder rows.
  void pack(const Batch& batch);
  // Unpacks the gradient of a packed stream into the padded layout of `pass` for the embedding.
  const float* unpacked(const float* d, const Pass& pass);

  int S_;
  VocabParallelEmbedding enc_embed_;
  TransformerStack encoder_;
  VocabParallelEmbedding dec_embed_;
  TransformerStack decoder_;
  LmHead head_;
  Memory mem_;  // the encoder output of the last forward, as cross-attention reads it
  DeviceBuffer<int32_t> source_, lengths_;
  std::vector<int32_t> host_source_;  // the source with padding replaced by token 0
  // Training steps pack the rows (ModelSetup::pack_rows): the maps (pack then unpack, each
  // max_batch * S or * T).
  DeviceBuffer<int32_t> src_maps_, tgt_maps_, tgt_lengths_;
  std::vector<int32_t> host_src_maps_, host_tgt_maps_, packed_targets_;
  Pass enc_, dec_;  // the encoder's and the decoder's passes of the last forward
  float *enc_in_ = nullptr, *dec_in_ = nullptr;  // the packed embeddings
  float* dpad_ = nullptr;                        // backward: an unpacked stream gradient
  const int32_t* tokens_ = nullptr;              // of the last forward (device)
  const float* out_ = nullptr;                   // the decoder's output in the last forward
  float* dmem_ = nullptr;                        // backward: the gradient of the encoder output
  float* dstream_ = nullptr;                     // backward: the gradient of the residual stream
  float* dhead_ = nullptr;                       // backward: the gradient of the decoder's output
};

}  // namespace ph
