#include "trainer/optimizer.h"

#include <algorithm>
#include <cmath>

namespace ph {

AdamW::AdamW(Backend& backend, const OptimConfig& cfg, const ParamTable& table, size_t lo,
             size_t hi)
    : be_(backend),
      cfg_(cfg),
      lo_(lo),
      hi_(hi == 0 ? table.total() : hi),
      m_(backend, hi_ - lo_),
      v_(backend, hi_ - lo_) {
  for (const Param& p : table.params()) {
    const size_t b = std::max(p.offset, lo_), e = std::min(p.offset + p.numel, hi_);
    if (b >= e) continue;
    const bool decay = p.decay || (cfg_.decay_1d && p.shape.size() == 1);
    ranges_.push_back({b - lo_, e - lo_, decay ? cfg_.weight_decay : 0.0f});
  }
}

void AdamW::download_moments(float* m_host, float* v_host) const {
  be_.download(m_host, m_.data(), m_.bytes());
  be_.download(v_host, v_.data(), v_.bytes());
}

void AdamW::upload_moments(const float* m_host, const float* v_host) {
  be_.upload(m_.data(), m_host, m_.bytes());
  be_.upload(v_.data(), v_host, v_.bytes());
}

void AdamW::step(float* params, const float* grads, float lr, int t, float grad_scale) {
  AdamWParams a{};
  a.lr = lr;
  a.beta1 = cfg_.beta1;
  a.beta2 = cfg_.beta2;
  a.eps = cfg_.eps;
  a.bias_correction1 = 1.0f - std::pow(cfg_.beta1, static_cast<float>(t));
  a.bias_correction2 = 1.0f - std::pow(cfg_.beta2, static_cast<float>(t));
  a.grad_scale = grad_scale;
  be_.adamw_update_ranges(params + lo_, grads, m_.data(), v_.data(), ranges_.data(), ranges_.size(),
                          a);
}

GradNorm::GradNorm(Backend& backend, const ParamTable& table, size_t lo, size_t hi,
                   bool count_replicated)
    : be_(backend) {
  for (const Param& p : table.params()) {
    if (p.split == Split::Replicated && !count_replicated) continue;
    const size_t b = std::max(p.offset, lo), e = std::min(p.offset + p.numel, hi);
    if (b < e) {
      begin_.push_back(b - lo);
      end_.push_back(e - lo);
    }
  }
  sums_.resize(begin_.size());
  be_.reserve_norm_ranges(begin_.size());
}

double GradNorm::sum_squares(const float* grads) {
  be_.sum_squares_ranges(sums_.data(), grads, begin_.data(), end_.data(), begin_.size());
  double sum = 0.0;
  for (double s : sums_) sum += s;
  return sum;
}

float clip_scale(double norm, float clip) {
  if (clip <= 0.0f || !(norm > clip)) return 1.0f;
  return static_cast<float>(clip / (norm + 1e-6));
}

}  // namespace ph
