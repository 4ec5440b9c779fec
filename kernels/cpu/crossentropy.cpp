// Softmax cross-entropy over the real vocabulary columns, one row per task.
#include "kernels/cpu/crossentropy.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>

#include "kernels/common/label_smoothing.h"
#include "kernels/cpu/fast_exp.h"

namespace ph::cpu {

namespace {

float row_max_of(const float* x, int V) {
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

// Label smoothing: kernels/common/label_smoothing.h (the formulas, and smoothed_loss). A row's
// mean of x_j - max over the V real columns:
float mean_minus_max(const float* x, int V, float mx) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (int j = 0; j < V; ++j) s += x[j] - mx;
  return s / static_cast<float>(V);
}

}  // namespace

void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N, int V,
                          int Vp, int ignore_index, float smoothing) {
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
    const float mx = row_max_of(x, V);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) sum += exp_vec(x[j] - mx);
    const float log_sum = std::log(sum);
    const float nll = log_sum - (x[t] - mx);
    losses[n] =
        smoothing > 0.0f ? smoothed_loss(nll, log_sum, mean_minus_max(x, V, mx), smoothing) : nll;
  }
}

void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                        int V, int Vp, int ignore_index, float smoothing, float dloss) {
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    float* x = logits_to_dlogits + static_cast<size_t>(n) * Vp;
    const int32_t t = targets[n];
    if (t == ignore_index || !valid_target(t, V)) {
      losses[n] = t == ignore_index ? 0.0f : kNaN;
      std::fill(x, x + Vp, 0.0f);
      continue;
    }
    const float mx = row_max_of(x, V);
    const float xt = x[t];
    const float mean_mx = smoothing > 0.0f ? mean_minus_max(x, V, mx) : 0.0f;
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < V; ++j) {
      const float e = exp_vec(x[j] - mx);
      x[j] = e;
      sum += e;
    }
    const float log_sum = std::log(sum);
    const float nll = log_sum - (xt - mx);
    const float inv = 1.0f / sum;
    const float p_target = x[t] * inv;
    const float g = inv * dloss;
    if (smoothing > 0.0f) {
      losses[n] = smoothed_loss(nll, log_sum, mean_mx, smoothing);
      const float uniform = smoothing_uniform(smoothing, V, dloss);
      for (int j = 0; j < V; ++j) x[j] = x[j] * g - uniform;
      x[t] = (p_target - (1.0f - smoothing)) * dloss - uniform;
    } else {
      losses[n] = nll;
      for (int j = 0; j < V; ++j) x[j] *= g;
      x[t] = (p_target - 1.0f) * dloss;
    }
    std::fill(x + V, x + Vp, 0.0f);
  }
}

// The real (unpadded) columns of [v0, v0 + Vl) are the local indices [0, real_local(...)).
static int real_local(int Vl, int v0, int V) {
  return std::clamp(V - v0, 0, Vl);
}

void vp_crossentropy_max(float* row_max, const float* logits, int N, int Vl, int v0, int V) {
  const int R = real_local(Vl, v0, V);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) row_max[n] = row_max_of(logits + static_cast<size_t>(n) * Vl, R);
}

void vp_crossentropy_sums(float* sum_exp, float* target_logit, float* sum_logits,
                          const float* logits, const float* row_max, const int32_t* targets, int N,
                          int Vl, int v0, int V, int ignore_index) {
  const int R = real_local(Vl, v0, V);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const float* x = logits + static_cast<size_t>(n) * Vl;
    const float mx = row_max[n];
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < R; ++j) sum += exp_vec(x[j] - mx);
    sum_exp[n] = sum;
    const int32_t t = targets[n];
    const bool here = t != ignore_index && t >= v0 && t < v0 + R;
    target_logit[n] = here ? x[t - v0] : 0.0f;
    if (sum_logits) {
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (int j = 0; j < R; ++j) s += x[j] - mx;
      sum_logits[n] = s;
    }
  }
}

void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                            const float* row_max, const float* sum_exp, const float* target_logit,
                            const float* sum_logits, const int32_t* targets, int N, int Vl, int v0,
                            int V, int ignore_index, float smoothing, float dloss) {
  const int R = real_local(Vl, v0, V);
#pragma omp parallel for schedule(static)
  for (int n = 0; n < N; ++n) {
    const int32_t t = targets[n];
    const bool ignored = t == ignore_index;
    const bool valid = valid_target(t, V);
    if (ignored || !valid) {
      losses[n] = ignored ? 0.0f : kNaN;
    } else {
      const float nll = std::log(sum_exp[n]) + row_max[n] - target_logit[n];
      losses[n] = smoothing > 0.0f ? smoothed_loss(nll, std::log(sum_exp[n]),
                                                   sum_logits[n] / static_cast<float>(V), smoothing)
                                   : nll;
    }
    if (!dlogits) continue;
    float* d = dlogits + static_cast<size_t>(n) * Vl;
    if (ignored || !valid) {
      std::fill(d, d + Vl, 0.0f);
      continue;
    }
    const float* x = logits + static_cast<size_t>(n) * Vl;
    const float mx = row_max[n];
    const float g = dloss / sum_exp[n];
    const float uniform = smoothing_uniform(smoothing, V, dloss);
    if (smoothing > 0.0f) {
#pragma omp simd
      for (int j = 0; j < R; ++j) d[j] = exp_vec(x[j] - mx) * g - uniform;
    } else {
#pragma omp simd
      for (int j = 0; j < R; ++j) d[j] = exp_vec(x[j] - mx) * g;
    }
    std::fill(d + R, d + Vl, 0.0f);
    if (t >= v0 && t < v0 + R) d[t - v0] -= (1.0f - smoothing) * dloss;
  }
}

}  // namespace ph::cpu
