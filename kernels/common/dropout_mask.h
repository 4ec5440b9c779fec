// The dropout decision for one element: a pure function of (seed, step, site, global index)
// so that masks are identical on every layout and backend, and are regenerated in backward
// instead of stored. `index` is the element's position in the unsharded tensor of the whole
// global batch (sample-in-global-batch major), `site` names the dropout location.
#pragma once
#include <cstdint>

#include "kernels/common/philox.h"

namespace ph {

struct DropoutSpec {
  float p = 0.0f;     // drop probability; 0 disables the site
  uint64_t seed = 0;  // run seed
  uint32_t step = 0;  // optimizer step
  uint32_t site = 0;  // dropout site id (see model/gpt.h)
};

// Scale applied to kept elements: 1 / (1 - p).
PH_HD float dropout_scale(float p) {
  return p > 0.0f ? 1.0f / (1.0f - p) : 1.0f;
}

// True when the element survives.
PH_HD bool dropout_keep(const DropoutSpec& d, uint64_t index) {
  return uniform_from_bits(philox_bits(d.seed, d.step, d.site, index)) >= d.p;
}

}  // namespace ph
