#include "model/model_core.h"

namespace ph {

void ModelCore::finalize(size_t arena_multiple) {
  const size_t total = table_.place(tp_.rank, tp_.size);
  const size_t capacity = (total + arena_multiple - 1) / arena_multiple * arena_multiple;
  params_ = DeviceBuffer<float>(be_, capacity);
  grads_ = DeviceBuffer<float>(be_, capacity);
  acts_ = plan_.allocate(be_);
}

}  // namespace ph
