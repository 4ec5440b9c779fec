#include "trainer/train_step.h"

#include <cmath>

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
      norm_(model.backend(), model.table(), sync.lo(), sync.hi(), grid.tp_rank == 0) {
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
  int64_t counted = 0;
  for (const Batch& b : micro_)
    for (int32_t t : b.targets) counted += t != kIgnoreIndex ? 1 : 0;
  if (dp > 1) grid_.dp_comm->all_reduce(&counted, 1, ReduceOp::Sum);
  model_.zero_grads();
  double loss_sum = 0.0;
  const float dloss = counted > 0 ? 1.0f / static_cast<float>(counted) : 0.0f;
  DropoutContext d;
  d.train = true;
  d.seed = cfg_.train.seed;
  d.step = static_cast<uint32_t>(step);
  for (int a = 0; a < accum_; ++a) {
    if (a == accum_ - 1) model_.set_grad_hook(sync_.ready_hook());  // the last one overlaps
    loss_sum += model_.forward_backward(micro_[static_cast<size_t>(a)], dloss, d, nullptr);
    model_.set_grad_hook({});
  }
  if (dp > 1) grid_.dp_comm->all_reduce(&loss_sum, 1, ReduceOp::Sum);
  const GradView grads = sync_.finish();
  // Global gradient norm: every parameter once (replicated ones on tensor-parallel rank 0).
  double sq = norm_.sum_squares(grads.grads);
  if (sync_.sharded()) grid_.dp_comm->all_reduce(&sq, 1, ReduceOp::Sum);
  if (grid_.tp > 1) grid_.tp_comm->all_reduce(&sq, 1, ReduceOp::Sum);

  StepResult r;
  r.tokens = counted;
  r.grad_norm = std::sqrt(sq);
  r.loss = counted > 0 ? loss_sum / static_cast<double>(counted) : 0.0;
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
