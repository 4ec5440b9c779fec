#include "model/grad_readiness.h"

#include <algorithm>
#include <stdexcept>

namespace ph {

void GradReadiness::use(int p) {
  if (p < 0) return;
  if (static_cast<size_t>(p) >= users_.size()) users_.resize(static_cast<size_t>(p) + 1, 0);
  ++users_[static_cast<size_t>(p)];
}

void GradReadiness::begin() {
  pending_ = users_;
}

void GradReadiness::release(const std::vector<int>& params, const ParamTable& table) {
  ready_.clear();
  for (int p : params) {
    int& left = pending_.at(static_cast<size_t>(p));
    if (left <= 0) throw std::logic_error("GradReadiness: " + table[p].name + " released twice");
    if (--left == 0) ready_.push_back(p);
  }
  if (!hook_ || ready_.empty()) return;
  std::sort(ready_.begin(), ready_.end(),
            [&](int a, int b) { return table[a].offset < table[b].offset; });
  size_t begin = table[ready_[0]].offset, end = begin;
  for (int p : ready_) {
    const Param& q = table[p];
    if (q.offset != end) {  // a gap: report what is contiguous so far
      if (end > begin) hook_(begin, end - begin);
      begin = q.offset;
    }
    end = q.offset + q.numel;
  }
  if (end > begin) hook_(begin, end - begin);
}

}  // namespace ph
