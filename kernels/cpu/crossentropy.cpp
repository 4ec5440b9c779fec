// Softmax cross-entropy over the real vocabulary columns, one row per task.
#include "kernels/cpu/crossentropy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "kernels/cpu/fast_exp.h"

namespace ph::cpu {

namespace {

float row_max(const float* x, int V) {
  float mx = -std::numeric_limits<float>::infinity();
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < V; ++j) mx = std::max(mx, x[j]);
  return mx;
}

// A target outside [0, V) that is not ignore_index is a data error the loss must not hide:
// it gets a NaN loss (caught by the numerical-fault check) and no gradient.
bool valid_target(int32_t t, int V) {
  return t >= 0 && t < V;
}

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                          int Vp, int ignore_index) {
  // loss = log sum_j exp(x_j - max) - (x_target - max)
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    if (t == ignore_index) {
      losses[n] = 0.0f;
      continue;
    }
    if (!valid_target(t, V)) {
      losses[n] = kNaN;
      continue;
    }
    const float* x = logits + static_cast<size_t>(n) * Vp;
    const float mx = row_max(x, V);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) sum += exp_vec(x[j] - mx);
    losses[n] = std::log(sum) - (x[t] - mx);
  }
}

void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                        int V, int Vp, int ignore_index, float dloss) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* x = logits_to_dlogits + static_cast<size_t>(n) * Vp;
    const int32_t t = targets[n];
    if (t == ignore_index || !valid_target(t, V)) {
      losses[n] = t == ignore_index ? 0.0f : kNaN;
      std::fill(x, x + Vp, 0.0f);
      continue;
    }
    const float mx = row_max(x, V);
    const float xt = x[t];
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) {
      const float e = exp_vec(x[j] - mx);
      x[j] = e;
      sum += e;
    }
    losses[n] = std::log(sum) - (xt - mx);
    const float inv = 1.0f / sum;
    const float p_target = x[t] * inv;
    const float g = inv * dloss;
    for (int j = 0; j < V; ++j) x[j] *= g;
    x[t] = (p_target - 1.0f) * dloss;
    std::fill(x + V, x + Vp, 0.0f);
  }
}

}  // namespace ph::cpu
