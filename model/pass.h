// One forward pass (and its backward) of a block over a micro-batch, and the dropout sites
// that depend on it.
#pragma once
#include <cstdint>

#include "kernels/backend.h"

namespace ph {

// What makes a forward pass's dropout masks unique: training or not, the run seed and the
// optimizer step. Masks are also a function of the global coordinates of each element (Pass),
// never of the layout or of which micro-batch a sample lands in.
struct DropoutContext {
  bool train = false;  // false: no dropout anywhere (eval, sampling)
  uint64_t seed = 0;
  uint32_t step = 0;
};

// B samples of T positions (T at most the block's configured maximum), the first of which is
// sample `sample0` of the global batch.
struct Pass {
  int B = 0, T = 0;
  int64_t sample0 = 0;
  DropoutContext dropout;
  int rows() const { return B * T; }
};

// Inverted dropout at one site (kernels/common/rng_streams.h) on activations [B*T, cols]
// whose samples are T_max rows apart in the unsharded tensor.
struct Dropout {
  float p = 0.0f;
  uint32_t site = 0;
  int T_max = 0;

  DropoutSpec spec(const Pass& pass) const {
    DropoutSpec s;
    s.p = pass.dropout.train ? p : 0.0f;
    s.seed = pass.dropout.seed;
    s.step = pass.dropout.step;
    s.site = site;
    return s;
  }
  DropoutBlock block(const Pass& pass, int cols) const {
    DropoutBlock b;
    b.sample0 = pass.sample0;
    b.T = pass.T;
    b.T_max = T_max;
    b.global_cols = cols;
    return b;
  }
  void forward(Backend& be, float* x, int cols, const Pass& pass) const {
    be.dropout_forward(x, x, pass.rows(), cols, spec(pass), block(pass, cols));
  }
  void backward(Backend& be, float* dx, const float* dy, int cols, const Pass& pass) const {
    be.dropout_backward(dx, dy, pass.rows(), cols, spec(pass), block(pass, cols));
  }
};

}  // namespace ph
