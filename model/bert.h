// BERT (Devlin et al. 2019), a composition of the shared blocks: the embedding of the tokens,
// learned positions and token types with its LayerNorm (emb_ln) and dropout; a stack of
// bidirectional layers (post-norm by default, pre-norm supported) whose keys past each sample's
// length (Batch::lengths) are masked; the masked-LM head on the prediction slots only
// (Batch::mlm_positions, gathered), its decoder tied to the token table; and, with
// model.sentence_head nsp or sop, the pooler and the two-class sentence head on [CLS]
// (position 0). With ModelSetup::pack_rows (the default) the stack's last layer computes only
// the rows those heads read: its queries and everything after self-attention run on the
// prediction slots' positions and [CLS] (TransformerLayer::forward's `out`), each drawing the
// dropout mask of its position, so the results are those of the full layer. The objective is
// HF BertForPreTraining's: the MLM loss (the base Model's vocab-parallel cross-entropy, over
// loss_rows() = B*P rows of logits()) plus the sentence loss, weighted in backward by
// Batch::sentence_dloss.
//
// Parameter names and shapes (PyTorch orientation [out, in]), in arena order — one to one onto
// HF BertForPreTraining: wte [V, d], wpe [T, d], wtt [types, d], emb_ln.{weight,bias};
// h.{i}.ln1.*, h.{i}.attn.{q,k,v,proj}.*, h.{i}.ln2.*, h.{i}.mlp.{fc,proj}.*; lnf.* (pre-norm
// only); mlm.dense.*, mlm.ln.*, mlm.bias [V]; pooler.* and cls.* (with a sentence head).
//
// Tensor parallelism: heads and FFN sharded, the embedding, the MLM decoder and mlm.bias split
// by vocabulary; everything else replicated, with identical gradients on every rank. Dropout
// sites (kernels/common/rng_streams.h): the embedding kSiteEncoderEmbed, the stack kEncoder.
#pragma once

#include "model/embedding.h"
#include "model/mlm_head.h"
#include "model/model.h"
#include "model/sentence_classifier.h"
#include "model/transformer_stack.h"

namespace ph {

class Bert final : public Model {
 public:
  // setup.max_predictions (1..seq_len) sizes the MLM head.
  Bert(Backend& be, const ModelConfig& cfg, const ModelSetup& setup);

  // Reads tokens, types [B*T] (token types < type_vocab_size), lengths [B] in [1, T], P (1 ..
  // max_predictions) and mlm_positions [B*P] (positions in [0, T), distinct within a sample
  // where the slot's target is not kIgnoreIndex), and with a sentence head sentence_labels [B]
  // (or none); std::logic_error otherwise.
  void forward(const Batch& batch, const DropoutContext& d) override;
  float* logits() const override { return mlm_.logits(); }
  int loss_rows(const Batch& batch) const override { return batch.B * batch.P; }
  SentenceStats sentence_stats() const override { return stats_; }
  // Rows of the stack's output in the last forward: B*T, or with ModelSetup::pack_rows the
  // prediction slots' and (with a sentence head) [CLS]'s, which the last layer computes alone.
  int output_rows() const { return output_rows_; }

 private:
  void backward(const Batch& batch, const DropoutContext& d) override;
  size_t side_buffer_bytes() const override {
    return types_.bytes() + lengths_.bytes() + rows_.bytes() + cls_rows_.bytes() + labels_.bytes() +
           select_maps_.bytes();
  }
  void upload_side(const Batch& batch);
  void select_rows(const Batch& batch);
  const Pass* output_pass(const Pass& pass);
  void sentence_forward(const Batch& batch);

  VocabParallelEmbedding embed_;
  TransformerStack stack_;
  MlmHead mlm_;
  std::unique_ptr<SentenceClassifier> sentence_;
  DeviceBuffer<int32_t> types_, lengths_, rows_, cls_rows_, labels_;
  DeviceBuffer<int32_t> select_maps_;  // the stack's output rows (pack_rows): pack | unpack
  std::vector<int32_t> host_rows_, host_cls_rows_, host_labels_, host_select_maps_;
  Packing selected_;  // of the last forward (select_maps_)
  Pass out_pass_;     // its output pass
  int output_rows_ = 0;
  std::vector<float> host_logits_, host_losses_;
  SentenceStats stats_;
  const int32_t* tokens_ = nullptr;  // of the last forward (device)
  const float* out_ = nullptr;       // the stack's output in the last forward [B*T, d]
                                     // (pack_rows: the selected rows [selected_.N, d])
  float* gathered_ = nullptr;        // the stack's output at the prediction slots [B*P, d]
  float* cls_ = nullptr;             // the stack's output at [CLS] [B, d]
  float* dgathered_ = nullptr;       // backward scratch [B*P, d]
  float* dstream_ = nullptr;         // backward: the gradient of the residual stream
  float* dout_ = nullptr;            // backward: the gradient of the stack's output
};

}  // namespace ph
