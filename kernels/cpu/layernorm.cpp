// LayerNorm over the last dimension.
#include "kernels/cpu/layernorm.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace ph::cpu {

namespace {

constexpr int kColBlock = 64;  // channels per task when reducing dw, db over rows

}  // namespace

void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                       const float* b, int N, int C, float eps) {
  // inp, out [N, C]; mean, rstd [N]; w, b [C] (b may be null: no bias).
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* x = inp + static_cast<size_t>(n) * C;
    float* y = out + static_cast<size_t>(n) * C;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int c = 0; c < C; ++c) sum += x[c];
    const float m = sum / static_cast<float>(C);
    float sq = 0.0f;  // two passes: the variance of centred values does not cancel
#pragma omp simd reduction(+ : sq)
    for (int c = 0; c < C; ++c) sq += (x[c] - m) * (x[c] - m);
    const float s = 1.0f / std::sqrt(sq / static_cast<float>(C) + eps);
    if (b) {
      for (int c = 0; c < C; ++c) y[c] = (x[c] - m) * s * w[c] + b[c];
    } else {
      for (int c = 0; c < C; ++c) y[c] = (x[c] - m) * s * w[c];
    }
    mean[n] = m;
    rstd[n] = s;
  }
}

void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                        const float* w, const float* mean, const float* rstd, int N, int C,
                        bool accumulate) {
  // Two passes so that nothing is reduced across threads: dinp needs row sums (parallel over
  // rows), dw and db need column sums over all rows (parallel over fixed channel blocks, each
  // summing its rows in order). db may be null (no bias).
#pragma omp parallel
  {
#pragma omp for schedule(static) nowait
    for (int n = 0; n < N; ++n) {
      const float* x = inp + static_cast<size_t>(n) * C;
      const float* dy = dout + static_cast<size_t>(n) * C;
      float* dx = dinp + static_cast<size_t>(n) * C;
      const float m = mean[n], s = rstd[n];
      // xhat = (x - m) s, g = w dy: dx = s (g - mean(g) - xhat mean(g xhat)).
      float sum_g = 0.0f, sum_gx = 0.0f;
#pragma omp simd reduction(+ : sum_g, sum_gx)
      for (int c = 0; c < C; ++c) {
        const float g = w[c] * dy[c];
        sum_g += g;
        sum_gx += g * (x[c] - m) * s;
      }
      const float mean_g = sum_g / static_cast<float>(C);
      const float mean_gx = sum_gx / static_cast<float>(C);
      if (!accumulate) std::fill(dx, dx + C, 0.0f);  // in cache: 0 + v, as zeroing first
      for (int c = 0; c < C; ++c) {
        const float xhat = (x[c] - m) * s;
        dx[c] += s * (w[c] * dy[c] - mean_g - xhat * mean_gx);
      }
    }
    const int blocks = (C + kColBlock - 1) / kColBlock;
#pragma omp for schedule(static)
    for (int blk = 0; blk < blocks; ++blk) {
      const int c0 = blk * kColBlock;
      const int nc = std::min(kColBlock, C - c0);
      float acc_w[kColBlock] = {};
      float acc_b[kColBlock] = {};
      for (int n = 0; n < N; ++n) {
        const float* x = inp + static_cast<size_t>(n) * C + c0;
        const float* dy = dout + static_cast<size_t>(n) * C + c0;
        const float m = mean[n], s = rstd[n];
        for (int c = 0; c < nc; ++c) {
          acc_w[c] += dy[c] * ((x[c] - m) * s);
          acc_b[c] += dy[c];
        }
      }
      for (int c = 0; c < nc; ++c) dw[c0 + c] += acc_w[c];
      if (db) {
        for (int c = 0; c < nc; ++c) db[c0 + c] += acc_b[c];
      }
    }
  }
}

}  // namespace ph::cpu
