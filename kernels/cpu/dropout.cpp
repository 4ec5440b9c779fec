// Inverted dropout with counter-based masks: nothing is stored, backward regenerates.
#include "kernels/cpu/dropout.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/dropout_scales.h"
#include "kernels/cpu/residual.h"

namespace ph::cpu {

namespace {

constexpr int kChunk = 256;  // mask elements generated at a time (stack buffer)

// out[r, c] = inp[r, c] * scale-or-0 for the block's elements; the shared body of forward and
// backward (the mask of an element is the same function of its global index in both).
void apply_mask(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                const DropoutBlock& blk) {
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const uint64_t base = dropout_row_index(blk, r);
    const float* x = inp + static_cast<size_t>(r) * cols;
    float* y = out + static_cast<size_t>(r) * cols;
    float scales[kChunk];
    for (int c0 = 0; c0 < cols; c0 += kChunk) {
      const int n = std::min(kChunk, cols - c0);
      dropout_scales(scales, d, base + static_cast<uint64_t>(c0), n);
      for (int c = 0; c < n; ++c) y[c0 + c] = x[c0 + c] * scales[c];
    }
  }
}

}  // namespace

void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                     const DropoutBlock& blk) {
  if (d.p > 0.0f) {
    apply_mask(out, inp, rows, cols, d, blk);
  } else if (out != inp) {
    std::memcpy(out, inp, static_cast<size_t>(rows) * cols * sizeof(float));
  }
}

void dropout_residual_forward(float* out, const float* a, const float* b, int rows, int cols,
                              const DropoutSpec& d, const DropoutBlock& blk) {
  if (d.p <= 0.0f) {
    residual_forward(out, a, b, static_cast<size_t>(rows) * static_cast<size_t>(cols));
    return;
  }
#pragma omp parallel for schedule(static)
  for (int r = 0; r < rows; ++r) {
    const uint64_t base = dropout_row_index(blk, r);
    const size_t row = static_cast<size_t>(r) * static_cast<size_t>(cols);
    float scales[kChunk];
    for (int c0 = 0; c0 < cols; c0 += kChunk) {
      const int n = std::min(kChunk, cols - c0);
      dropout_scales(scales, d, base + static_cast<uint64_t>(c0), n);
      // Two rounded steps, as the two calls: the dropped-out branch, then the sum.
      for (int c = 0; c < n; ++c) scales[c] = b[row + c0 + c] * scales[c];
      for (int c = 0; c < n; ++c) out[row + c0 + c] = a[row + c0 + c] + scales[c];
    }
  }
}

void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                      const DropoutBlock& blk) {
  dropout_forward(dinp, dout, rows, cols, d, blk);
}

}  // namespace ph::cpu
