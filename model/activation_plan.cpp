#include "model/activation_plan.h"

#include <algorithm>
#include <stdexcept>

namespace ph {

namespace {

constexpr size_t kAlign = 64;  // floats: regions start at 256-byte boundaries

size_t aligned(size_t n) {
  return (n + kAlign - 1) / kAlign * kAlign;
}

}  // namespace

void ActivationPlan::own(float** slot, size_t n) {
  if (allocated_) throw std::logic_error("ActivationPlan: own() after allocate()");
  regions_.push_back(Region{"", n});
  requests_.push_back(Request{slot, regions_.size() - 1});
}

void ActivationPlan::shared(float** slot, const std::string& name, size_t n) {
  if (allocated_) throw std::logic_error("ActivationPlan: shared() after allocate()");
  auto it = std::find_if(regions_.begin(), regions_.end(),
                         [&](const Region& r) { return r.name == name; });
  if (it == regions_.end()) {
    regions_.push_back(Region{name, n});
    it = regions_.end() - 1;
  }
  it->size = std::max(it->size, n);
  requests_.push_back(Request{slot, static_cast<size_t>(it - regions_.begin())});
}

DeviceBuffer<float> ActivationPlan::allocate(Backend& be) {
  if (allocated_) throw std::logic_error("ActivationPlan: allocate() twice");
  allocated_ = true;
  std::vector<size_t> offset(regions_.size());
  size_t total = 0;
  for (size_t i = 0; i < regions_.size(); ++i) {
    offset[i] = total;
    total += aligned(regions_[i].size);
  }
  DeviceBuffer<float> arena(be, total);
  for (const Request& r : requests_)
    *r.slot = regions_[r.region].size > 0 ? arena.data() + offset[r.region] : nullptr;
  return arena;
}

}  // namespace ph
