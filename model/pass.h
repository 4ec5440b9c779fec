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

// Which rows of a padded [B*T] layout a packed activation holds (device arrays): the
// encoder-decoder runs its linear and element-wise layers on the real positions only and
// attention in the padded layout; BERT's last layer runs its FFN on the rows its heads read
// only (TransformerLayer::forward's `out`). pack [N]: the padded row of each packed row,
// increasing; unpack [B*T]: the packed row of each padded row, -1 for a dropped row.
struct Packing {
  int N = 0;
  const int32_t* pack = nullptr;
  const int32_t* unpack = nullptr;
  const int32_t* len = nullptr;  // [B] or null: when each sample keeps a prefix of its rows, its
                                 // length; attention skips the queries past it
                                 // (AttentionDims::q_len). Needed by a packed attention pass.
};

// The maps of a Packing of n padded rows keeping those r for which kept(r) holds: pack in
// maps[0, N), unpack in maps[n, 2n); returns N. kept(r) is called once, before maps[n + r] is
// written, in increasing r.
template <class Kept>
int pack_maps(int32_t* maps, int n, Kept kept) {
  int N = 0;
  for (int r = 0; r < n; ++r) {
    const bool keep = kept(r);
    maps[n + r] = keep ? N : -1;
    if (keep) maps[N++] = r;
  }
  return N;
}

// B samples of T positions (T at most the block's configured maximum), the first of which is
// sample `sample0` of the global batch. With packing (packed.pack not null) the activations
// hold packed.N rows of that layout (rows()), attention scatters them into the padded layout.
struct Pass {
  int B = 0, T = 0;
  int64_t sample0 = 0;
  DropoutContext dropout;
  Packing packed;
  bool is_packed() const { return packed.pack != nullptr; }
  int rows() const { return is_packed() ? packed.N : B * T; }
  int padded_rows() const { return B * T; }
  // The same pass over the padded layout (the embeddings run there).
  Pass padded() const {
    Pass p = *this;
    p.packed = Packing{};
    return p;
  }
};

// The pass a block's output is in: `out` (rows selected from `pass`, TransformerLayer::forward)
// or, without one, `pass` itself.
inline const Pass& output_of(const Pass& pass, const Pass* out) {
  return out ? *out : pass;
}

// Inverted dropout at one site (kernels/common/rng_streams.h) on activations [B*T, cols]
// (packed: [N, cols], each row drawing the mask of its padded row) whose samples are T_max rows
// apart in the unsharded tensor.
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
    b.rows = pass.packed.pack;
    return b;
  }
  void forward(Backend& be, float* x, int cols, const Pass& pass) const {
    be.dropout_forward(x, x, pass.rows(), cols, spec(pass), block(pass, cols));
  }
  // out = x + dropout(branch) (branch may be overwritten).
  void forward_residual(Backend& be, float* out, const float* x, float* branch, int cols,
                        const Pass& pass) const {
    be.dropout_residual_forward(out, x, branch, pass.rows(), cols, spec(pass), block(pass, cols));
  }
  void backward(Backend& be, float* dx, const float* dy, int cols, const Pass& pass) const {
    be.dropout_backward(dx, dy, pass.rows(), cols, spec(pass), block(pass, cols));
  }
};

}  // namespace ph
