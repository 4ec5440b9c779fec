#include "model/model.h"

#include <stdexcept>
#include <string>

#include "model/embedding.h"

namespace ph {

Model::Model(Backend& be, const ModelConfig& cfg, const ModelSetup& setup)
    : cfg_(cfg),
      setup_(setup),
      core_(be, setup.tp),
      Vp_(padded_vocab_size(cfg.vocab_size, setup.tp.size)),
      loss_(core_, cfg.vocab_size, setup.max_batch * cfg.seq_len) {
  if (setup.tp.size > 1 && !setup.tp.comm)
    throw std::logic_error("Model: tp > 1 needs a tensor-parallel communicator");
}

void Model::finish_construction() {
  core_.finalize(setup_.arena_multiple);
  const size_t n = static_cast<size_t>(setup_.max_batch) * static_cast<size_t>(cfg_.seq_len);
  tokens_ = DeviceBuffer<int32_t>(core_.be(), n);
  targets_ = DeviceBuffer<int32_t>(core_.be(), n);
  host_losses_.resize(n);
}

size_t Model::memory_bytes() const {
  return core_.params().bytes() + core_.grads().bytes() + core_.acts().bytes() + tokens_.bytes() +
         targets_.bytes() + side_buffer_bytes();
}

void Model::initialize(uint64_t seed) {
  std::vector<float> host(arena_capacity(), 0.0f);
  table().initialize(host.data(), seed);
  upload_params(host.data());
}

void Model::upload_params(const float* host) {
  backend().upload(core_.params().data(), host, core_.params().bytes());
}

void Model::download_params(float* host) const {
  backend().download(host, core_.params().data(), core_.params().bytes());
}

void Model::download_logits(float* host, int row0, int rows) const {
  const size_t Vl = static_cast<size_t>(local_vocab());
  backend().download(host, logits() + static_cast<size_t>(row0) * Vl,
                     static_cast<size_t>(rows) * Vl * sizeof(float));
}

void Model::check_batch(const Batch& b) const {
  if (b.B < 1 || b.B > setup_.max_batch || b.T < 1 || b.T > cfg_.seq_len ||
      b.tokens.size() < static_cast<size_t>(b.B) * static_cast<size_t>(b.T))
    throw std::logic_error("Model: batch " + std::to_string(b.B) + " x " + std::to_string(b.T) +
                           " outside the arena's " + std::to_string(setup_.max_batch) + " x " +
                           std::to_string(cfg_.seq_len));
}

Pass Model::pass_of(const Batch& b, const DropoutContext& d) {
  Pass p;
  p.B = b.B;
  p.T = b.T;
  p.sample0 = b.sample0;
  p.dropout = d;
  return p;
}

const int32_t* Model::upload_tokens(const Batch& b) {
  check_batch(b);
  backend().upload(tokens_.data(), b.tokens.data(),
                   static_cast<size_t>(b.B) * static_cast<size_t>(b.T) * sizeof(int32_t));
  return tokens_.data();
}

double Model::cross_entropy(const Batch& b, float smoothing, bool grad, float dloss,
                            int64_t* counted) {
  const std::vector<int32_t>* packed = packed_targets();
  const int N = packed ? static_cast<int>(packed->size()) : loss_rows(b);
  const size_t n = static_cast<size_t>(N);
  if (!packed && b.targets.size() < n)
    throw std::logic_error("Model: the batch has " + std::to_string(b.targets.size()) +
                           " targets for " + std::to_string(n) + " rows");
  const int32_t* targets = packed ? packed->data() : b.targets.data();
  backend().upload(targets_.data(), targets, n * sizeof(int32_t));
  loss_.forward(logits(), targets_.data(), N, local_vocab(), vocab_start(), smoothing, grad, dloss);
  backend().download(host_losses_.data(), loss_.losses(), n * sizeof(float));
  double sum = 0.0;
  int64_t count = 0;
  for (size_t i = 0; i < n; ++i)
    if (targets[i] != kIgnoreIndex) {
      sum += host_losses_[i];
      ++count;
    }
  if (counted) *counted = count;
  return sum;
}

double Model::loss(const Batch& b, const DropoutContext& d, int64_t* counted) {
  forward(b, d);
  return cross_entropy(b, 0.0f, false, 0.0f, counted);
}

double Model::forward_backward(const Batch& b, float dloss, const DropoutContext& d,
                               int64_t* counted) {
  struct Flag {  // in_training_step() for this call only, also when it throws
    bool& f;
    explicit Flag(bool& flag) : f(flag) { f = true; }
    ~Flag() { f = false; }
  } flag(in_training_step_);
  forward(b, d);
  const double sum = cross_entropy(b, setup_.label_smoothing, true, dloss, counted);
  core_.ready().begin();
  backward(b, d);
  return sum;
}

}  // namespace ph
