// Row gather and scatter-add, one output row per task.
#include "kernels/cpu/rows.h"

#include <cstddef>

namespace ph::cpu {

void gather_rows(float* out, const float* inp, const int32_t* rows, int n, int C) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    float* dst = out + static_cast<size_t>(i) * C;
    if (rows[i] < 0) {
#pragma omp simd
      for (int c = 0; c < C; ++c) dst[c] = 0.0f;
      continue;
    }
    const float* src = inp + static_cast<size_t>(rows[i]) * C;
#pragma omp simd
    for (int c = 0; c < C; ++c) dst[c] = src[c];
  }
}

void scatter_add_rows(float* dinp, const float* dout, const int32_t* rows, int n, int C) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    const float* src = dout + static_cast<size_t>(i) * C;
    float* dst = dinp + static_cast<size_t>(rows[i]) * C;
#pragma omp simd
    for (int c = 0; c < C; ++c) dst[c] += src[c];
  }
}

}  // namespace ph::cpu
