// The interface every model family offers the trainer, evaluator, sampler, checkpointing and
// command line, and what they share: the parameter table and arenas, the token buffers, the
// vocab-parallel loss over the logits, and the gradient-ready hook.
//
// Memory: parameters, gradients and activations are device memory of the backend (the host
// reaches them only through upload/download and the backend's ops), sized once at construction
// for the largest micro-batch; forward and backward allocate nothing.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "io/config.h"
#include "model/model_core.h"
#include "model/pass.h"
#include "model/vocab_parallel_loss.h"

namespace ph {

// One micro-batch on the host: B samples of T positions, the first of which is sample
// `sample0` of the step's global batch (dropout masks depend on it, never on the layout).
// Models read the parts they need: the GPT tokens and targets; the encoder-decoder also the
// source side (S > 0), whose sample b is source[b*S, b*S + source_lengths[b]) followed by
// padding (its values are ignored: keys past the length are masked).
struct Batch {
  int B = 0, T = 0;
  std::vector<int32_t> tokens;   // [B*T] input tokens
  std::vector<int32_t> targets;  // [B*T] the token to predict at each position; kIgnoreIndex: none
  int S = 0;                     // source positions per sample; 0: no source side
  std::vector<int32_t> source;   // [B*S] source tokens
  std::vector<int32_t> source_lengths;  // [B] real source tokens of each sample, in [1, S]
  // BERT (model.type bert). tokens hold the masked input ([CLS] A [SEP] [B [SEP]] then [PAD]);
  // targets hold, per sample, P = mlm_predictions slots: the original token of each predicted
  // position, kIgnoreIndex in unused slots ([B*P], not [B*T]).
  std::vector<int32_t> types;            // [B*T] token type (segment) of each position
  std::vector<int32_t> lengths;          // [B] real tokens of each sample in [1, T]; keys past it
                                         // are masked
  int P = 0;                             // prediction slots per sample (data.mlm.max_predictions)
  std::vector<int32_t> mlm_positions;    // [B*P] the position in [0, T) of each slot (0 if unused)
  std::vector<int32_t> sentence_labels;  // [B] nsp: 1 when B is a random segment, sop: 1 when
                                         // the segments are swapped (HF's labels); kIgnoreIndex
                                         // or empty: no sentence loss
  float sentence_dloss = 0;  // forward_backward: the weight of the sum of this micro-batch's
                             // sentence losses in the gradient (1 / sequences of the global batch)
  int64_t sample0 = 0;
};

// The sentence loss of a model's last forward (BERT's nsp / sop head; zeros without one): the
// sum of the per-sequence cross-entropies over the counted sequences (label not kIgnoreIndex),
// and how many of them the head classified right (argmax, ties to class 0).
struct SentenceStats {
  double loss_sum = 0;
  int64_t correct = 0;
  int64_t counted = 0;
};

// How a model is built beside its architecture (ModelConfig).
struct ModelSetup {
  int max_batch = 1;          // the largest micro-batch any call passes (sizes the arenas)
  TpGroup tp;                 // this rank's tensor-parallel group (device buffers)
  size_t arena_multiple = 1;  // pad the parameter/gradient arenas to a multiple (ZeRO shards)
  float label_smoothing = 0;  // of the training loss (forward_backward); loss() is plain NLL
  int max_predictions = 0;    // BERT: the most prediction slots P of a sample (<= seq_len)
  // The encoder-decoder's training step (forward_backward) runs its linear and element-wise
  // layers on the real positions only, dropping the padding (model/pass.h Packing); BERT's
  // last layer computes the rows its heads read only (model/bert.h). false keeps every row
  // (tests compare the two).
  bool pack_rows = true;
};

class Model {
 public:
  virtual ~Model() = default;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  Backend& backend() const { return core_.be(); }
  const ModelConfig& config() const { return cfg_; }
  const ParamTable& table() const { return core_.table(); }
  const TpGroup& tp() const { return core_.tp(); }
  int max_batch() const { return setup_.max_batch; }  // the largest micro-batch of a forward

  // The parameter and gradient arenas (device), arena_capacity() elements each: the parameters
  // in table order, then zero padding.
  float* params() { return core_.params().data(); }
  const float* params() const { return core_.params().data(); }
  float* grads() { return core_.grads().data(); }
  void zero_grads() { core_.grads().zero(); }
  void upload_params(const float* host);
  void download_params(float* host) const;
  size_t arena_size() const { return core_.table().total(); }
  size_t arena_capacity() const { return core_.params().size(); }
  // Device bytes held by the parameter, gradient and activation arenas, the token buffers and
  // a family's own index buffers (side_buffer_bytes).
  size_t memory_bytes() const;

  // Draws the initial parameters from (seed, name, global index).
  void initialize(uint64_t seed);

  // Forward over a micro-batch (B <= max_batch, T <= the configured length): logits() then
  // holds [loss_rows(batch), local_vocab()] (columns at or past the vocabulary are padding).
  virtual void forward(const Batch& batch, const DropoutContext& d) = 0;
  // The rows of logits() and of batch.targets: one per position, B*T (BERT: one per prediction
  // slot, B*P).
  virtual int loss_rows(const Batch& batch) const { return batch.B * batch.T; }
  // Forward and the sum of the token losses (plain cross-entropy) over the counted targets;
  // logits() stay valid.
  double loss(const Batch& batch, const DropoutContext& d, int64_t* counted);
  // One training micro-step: forward, loss (with the label smoothing of the setup) and backward
  // of dloss times the sum of the token losses (plus, with a sentence head, batch.sentence_dloss
  // times the sum of the sentence losses), ACCUMULATING into grads(). Returns the sum of the
  // token losses.
  double forward_backward(const Batch& batch, float dloss, const DropoutContext& d,
                          int64_t* counted);
  // The sentence loss of the last forward (loss() or forward_backward()), identical on every
  // tensor-parallel rank; zeros for a model without a sentence head.
  virtual SentenceStats sentence_stats() const { return {}; }

  // Logits of the last forward (device), this rank's vocabulary columns
  // [vocab_start(), vocab_start() + local_vocab()) of the padded vocabulary padded_vocab().
  virtual float* logits() const = 0;
  void download_logits(float* host, int row0, int rows) const;
  int padded_vocab() const { return Vp_; }
  int local_vocab() const { return Vp_ / core_.tp().size; }
  int vocab_start() const { return core_.tp().rank * local_vocab(); }

  // Called during backward with each range (offset, count) of the gradient arena as soon as it
  // is final for this micro-step (data parallelism starts its all-reduces there, overlapping
  // the rest of backward). An empty function disables it.
  void set_grad_hook(std::function<void(size_t, size_t)> hook) {
    core_.ready().set_hook(std::move(hook));
  }

 protected:
  Model(Backend& be, const ModelConfig& cfg, const ModelSetup& setup);
  // The derived constructor calls this once its blocks exist: places the parameters and
  // allocates the arenas.
  void finish_construction();
  // Backward of the last forward, from the dlogits the loss left in logits().
  virtual void backward(const Batch& batch, const DropoutContext& d) = 0;
  // The batch's tokens on the device.
  const int32_t* upload_tokens(const Batch& batch);
  void check_batch(const Batch& batch) const;
  static Pass pass_of(const Batch& batch, const DropoutContext& d);
  // Device bytes of a family's buffers outside the arenas (BERT's token types and prediction
  // rows, the encoder-decoder's source tokens): part of memory_bytes().
  virtual size_t side_buffer_bytes() const { return 0; }
  // The targets of the rows of logits() when the last forward packed its rows (ModelSetup::
  // pack_rows; the loss then runs on those rows), null otherwise (batch.targets, loss_rows).
  virtual const std::vector<int32_t>* packed_targets() const { return nullptr; }
  // True inside forward_backward: a family may pack its rows there (ModelSetup::pack_rows).
  // Evaluation (loss()) keeps one logits row per position, as its callers read them.
  bool in_training_step() const { return in_training_step_; }

  ModelConfig cfg_;
  ModelSetup setup_;
  ModelCore core_;

 private:
  // Cross-entropy of logits() against the batch's targets; returns the sum over counted ones.
  double cross_entropy(const Batch& batch, float smoothing, bool grad, float dloss,
                       int64_t* counted);

  int Vp_;
  bool in_training_step_ = false;
  VocabParallelLoss loss_;
  DeviceBuffer<int32_t> tokens_, targets_;  // [max_batch * T] of the current micro-batch
  std::vector<float> host_losses_;
};

}  // namespace ph
