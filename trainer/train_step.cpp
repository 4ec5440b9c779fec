#include "trainer/train_step.h"

#include <cmath>

#include "model/encdec.h"
#include "trainer/model_flops.h"
#include "trainer/schedule.h"

namespace ph {

TrainStep::TrainStep(const Config& cfg, const ProcessGrid& grid, Model& model, AdamW& opt,
                     GradSync& sync)
    : cfg_(cfg),
      grid_(grid),
      model_(model),
      opt_(opt),
      sync_(sync),
      micro_batch_(cfg.train.micro_batch),
      accum_(1),
      global_batch_(cfg.train.global_batch > 0 ? cfg.train.global_batch
                                               : cfg.train.micro_batch * grid.dp),
      norm_(model.backend(), model.table(), sync.lo(), sync.hi(), grid.tp_rank == 0),
      flops_per_token_(flops_per_token(cfg, model.table().full_count())) {
  accum_ = global_batch_ / (micro_batch_ * grid.dp);
  micro_.resize(static_cast<size_t>(accum_));
}

StepResult TrainStep::run(SampleSource& data, int64_t step, uint64_t consumed, int64_t applied) {
  const int dp = grid_.dp;
  for (int a = 0; a < accum_; ++a) {
    Batch& b = micro_[static_cast<size_t>(a)];
    data.shape(b, micro_batch_);  // allocates on the first step only
    b.sample0 = static_cast<int64_t>(a * dp + grid_.dp_rank) * micro_batch_;
    data.fill(consumed + static_cast<uint64_t>(b.sample0), micro_batch_, b);
  }
  // The loss is the mean over every counted target of the global batch, so targets are counted
  // (over data-parallel ranks) before any gradient is formed.
  // BERT's sentence loss is the mean over the global batch's labelled sequences (HF's total loss:
  // the mean token loss plus the mean sentence loss).
  // Throughput counts BERT's real input tokens (its targets are the few predicted ones).
  // The encoder-decoder's training step computes the real positions only (ModelSetup::
  // pack_rows): its sources' lengths and its targets up to each sample's last counted one.
  int64_t counts[5] = {0, 0, 0, 0, 0};  // targets, labelled sequences, BERT's input tokens,
                                        // computed source and target positions (encdec)
  for (const Batch& b : micro_) {
    for (int32_t t : b.targets) counts[0] += t != kIgnoreIndex ? 1 : 0;
    for (int32_t l : b.sentence_labels) counts[1] += l != kIgnoreIndex ? 1 : 0;
    for (int32_t n : b.lengths) counts[2] += n;
    for (int32_t n : b.source_lengths) counts[3] += n;
    for (int i = 0; i < b.B && b.S > 0; ++i) counts[4] += computed_target_positions(b, i);
  }
  if (dp > 1) grid_.dp_comm->all_reduce(counts, 5, ReduceOp::Sum);
  const int64_t counted = counts[0], sentences = counts[1];
  model_.zero_grads();
  double sums[2] = {0.0, 0.0};  // token losses, sentence losses
  const float dloss = counted > 0 ? 1.0f / static_cast<float>(counted) : 0.0f;
  const float dsentence = sentences > 0 ? 1.0f / static_cast<float>(sentences) : 0.0f;
  DropoutContext d;
  d.train = true;
  d.seed = cfg_.train.seed;
  d.step = static_cast<uint32_t>(step);
  for (int a = 0; a < accum_; ++a) {
    if (a == accum_ - 1) model_.set_grad_hook(sync_.ready_hook());  // the last one overlaps
    Batch& b = micro_[static_cast<size_t>(a)];
    b.sentence_dloss = dsentence;
    sums[0] += model_.forward_backward(b, dloss, d, nullptr);
    sums[1] += model_.sentence_stats().loss_sum;
    model_.set_grad_hook({});
  }
  if (dp > 1) grid_.dp_comm->all_reduce(sums, 2, ReduceOp::Sum);
  const GradView grads = sync_.finish();
  // Global gradient norm: every parameter once (replicated ones on tensor-parallel rank 0).
  double sq = norm_.sum_squares(grads.grads);
  if (sync_.sharded()) grid_.dp_comm->all_reduce(&sq, 1, ReduceOp::Sum);
  if (grid_.tp > 1) grid_.tp_comm->all_reduce(&sq, 1, ReduceOp::Sum);

  StepResult r;
  r.tokens = cfg_.model.type == ModelType::kBert ? counts[2] : counted;
  r.grad_norm = std::sqrt(sq);
  r.flops =
      cfg_.model.type == ModelType::kEncDec
          ? encdec_flops(cfg_.model, static_cast<double>(counts[3]), static_cast<double>(counts[4]))
          : flops_per_token_ * static_cast<double>(global_batch_) * cfg_.model.seq_len;
  r.loss = (counted > 0 ? sums[0] / static_cast<double>(counted) : 0.0) +
           (sentences > 0 ? sums[1] / static_cast<double>(sentences) : 0.0);
  r.lr =
      learning_rate(cfg_.optim, cfg_.train.max_steps, static_cast<int>(step), cfg_.model.d_model);
  // Loss and norm are global, so every rank takes the same branch.
  r.applied = std::isfinite(r.loss) && std::isfinite(r.grad_norm);
  if (r.applied) {
    opt_.step(model_.params(), grads.grads, r.lr, static_cast<int>(applied + 1),
              clip_scale(r.grad_norm, cfg_.train.grad_clip));
    sync_.gather_params(model_.params());
  }
  return r;
}

}  // namespace ph
