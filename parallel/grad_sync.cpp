#include "parallel/grad_sync.h"

namespace ph {

GradSync::GradSync(Backend& be, Communicator* dp_comm, float* grads, size_t size, size_t capacity,
                   Options options)
    : comm_(dp_comm),
      grads_(grads),
      size_(size),
      dp_(options.dp),
      zero_(options.zero && options.dp > 1),
      overlap_(options.overlap && options.dp > 1 && !zero_),
      shard_(capacity / static_cast<size_t>(options.dp)),
      lo_(zero_ ? shard_ * static_cast<size_t>(options.dp_rank) : 0),
      hi_(zero_ ? lo_ + shard_ : size),
      shard_grads_(be, zero_ ? shard_ : 0) {
  // One bucket per gradient-ready range: a model fires a few per layer at most.
  inflight_.reserve(64);
}

std::function<void(size_t, size_t)> GradSync::ready_hook() {
  if (!overlap_) return {};
  return [this](size_t offset, size_t count) {
    start(offset, count);
    started_ = true;
  };
}

void GradSync::start(size_t offset, size_t count) {
  inflight_.push_back(comm_->all_reduce_async(grads_ + offset, count, ReduceOp::Sum));
  comm_->progress();
}

GradView GradSync::finish() {
  if (dp_ == 1) return GradView{grads_, 0, size_};
  if (zero_) {
    comm_->reduce_scatter(grads_, shard_grads_.data(), shard_, ReduceOp::Sum);
    return GradView{shard_grads_.data(), lo_, hi_};
  }
  if (!started_) start(0, size_);
  for (Work& w : inflight_) w.wait();
  inflight_.clear();
  started_ = false;
  return GradView{grads_, 0, size_};
}

void GradSync::gather_params(float* params) {
  if (zero_) comm_->all_gather(params + lo_, params, shard_);
}

}  // namespace ph
