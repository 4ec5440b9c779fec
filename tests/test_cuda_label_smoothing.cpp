// Label smoothing in the CUDA cross-entropy kernels (kernels/cuda/crossentropy_kernels.cuh),
// compiled for the host and run through tests/cuda_shim.h: the case worked out by hand in
// test_kernel_label_smoothing.cpp, fused and over two vocabulary shards; and smoothing 0 bit
// for bit the kernels as they were before label smoothing existed (kept below, verbatim), on
// the production launch shape and on small ones. The comparison with the CPU backend at
// smoothing 0.1 is in test_cuda_kernels.cpp.
#include "tests/cuda_shim.h"  // first: the kernel headers compile against it

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/cuda/crossentropy_kernels.cuh"
#include "tests/compare_floats.h"
#include "tests/random_data.h"

namespace ph {
namespace {

using cuda::LaunchShape;
using testing::expect_bits;
using testing::FVec;
using testing::random_floats;

const shim::Launcher gpu;
constexpr int kIgnore = -100;
constexpr LaunchShape kOneWarpTwoBlocks{32, 2};

// ---------------------------------------------------------------------------------------------
// by hand (the derivation is in test_kernel_label_smoothing.cpp)

TEST(CudaLabelSmoothing, TinyCaseByHand) {
  // V = 3, Vp = 4, eps = 0.1, dloss = 0.5. Row 0: logits (0, ln 2, ln 7), p = (0.1, 0.2, 0.7),
  // target 1: loss -(0.1/3)(ln 0.1 + ln 0.2 + ln 0.7) - 0.9 ln 0.2 = 1.590784053, dlogits
  // (p - q) * 0.5 = (1/30, -11/30, 1/3). Row 1: uniform logits, target 2: loss ln 3, dlogits
  // (0.15, 0.15, -0.3). Row 2: ignored.
  const int N = 3, V = 3, Vp = 4;
  const float eps = 0.1f, dloss = 0.5f;
  const FVec logits = {0.0f, std::log(2.0f), std::log(7.0f), 1e4f, 0.0f, 0.0f,
                       0.0f, 1e4f,           1.0f,           2.0f, 3.0f, 1e4f};
  const std::vector<int32_t> targets = {1, 2, kIgnore};
  const double want_loss[N] = {1.590784053, 1.098612289, 0.0};
  const double want_d[N * Vp] = {1.0 / 30, -11.0 / 30, 1.0 / 3, 0.0, 0.15, 0.15,
                                 -0.3,     0.0,        0.0,     0.0, 0.0,  0.0};
  for (const LaunchShape s : {cuda::kCrossEntropyRowShape, kOneWarpTwoBlocks}) {
    FVec losses(N, 9.0f);
    cuda::impl::crossentropy_forward(gpu, losses.data(), logits.data(), targets.data(), N, V, Vp,
                                     kIgnore, eps, s);
    for (int n = 0; n < N; ++n) EXPECT_NEAR(losses[n], want_loss[n], 1e-6) << "forward " << n;
    FVec d = logits;
    cuda::impl::crossentropy_fused(gpu, d.data(), losses.data(), targets.data(), N, V, Vp, kIgnore,
                                   eps, dloss, s);
    for (int n = 0; n < N; ++n) EXPECT_NEAR(losses[n], want_loss[n], 1e-6) << "fused " << n;
    for (int i = 0; i < N * Vp; ++i) EXPECT_NEAR(d[i], want_d[i], 1e-7) << "dlogits " << i;

    // Two shards: columns {0, 1} and {2, padding}.
    const int Vl = 2;
    FVec shard[2];
    for (int r = 0; r < 2; ++r) {
      for (int n = 0; n < N; ++n) {
        for (int j = 0; j < Vl; ++j) shard[r].push_back(logits[n * Vp + r * Vl + j]);
      }
    }
    FVec mx(N, -INFINITY), m(N), se(N, 0.0f), tl(N, 0.0f), sl(N, 0.0f), se_r(N), tl_r(N), sl_r(N);
    for (int r = 0; r < 2; ++r) {
      cuda::impl::vp_crossentropy_max(gpu, m.data(), shard[r].data(), N, Vl, r * Vl, V, s);
      for (int n = 0; n < N; ++n) mx[n] = std::max(mx[n], m[n]);
    }
    for (int r = 0; r < 2; ++r) {
      cuda::impl::vp_crossentropy_sums(gpu, se_r.data(), tl_r.data(), sl_r.data(), shard[r].data(),
                                       mx.data(), targets.data(), N, Vl, r * Vl, V, kIgnore, s);
      for (int n = 0; n < N; ++n) {
        se[n] += se_r[n];
        tl[n] += tl_r[n];
        sl[n] += sl_r[n];
      }
    }
    for (int r = 0; r < 2; ++r) {
      FVec l(N), dl(shard[r].size()), only(N);
      cuda::impl::vp_crossentropy_finish(gpu, l.data(), dl.data(), shard[r].data(), mx.data(),
                                         se.data(), tl.data(), sl.data(), targets.data(), N, Vl,
                                         r * Vl, V, kIgnore, eps, dloss, s, kOneWarpTwoBlocks);
      cuda::impl::vp_crossentropy_finish(gpu, only.data(), static_cast<float*>(nullptr),
                                         shard[r].data(), mx.data(), se.data(), tl.data(),
                                         sl.data(), targets.data(), N, Vl, r * Vl, V, kIgnore, eps,
                                         dloss, s, kOneWarpTwoBlocks);
      for (int n = 0; n < N; ++n) {
        EXPECT_NEAR(l[n], want_loss[n], 1e-6) << "shard " << r << " row " << n;
        EXPECT_EQ(only[n], l[n]);
        for (int j = 0; j < Vl; ++j) {
          EXPECT_NEAR(dl[n * Vl + j], want_d[n * Vp + r * Vl + j], 1e-7)
              << "shard " << r << " row " << n << " column " << j;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// smoothing 0 is the kernels of before, bit for bit

namespace before {
// kernels/cuda/crossentropy_kernels.cuh as it was before label smoothing (commit fd280f6),
// verbatim but for the namespace.
using cuda::block_row_softmax;
using cuda::quiet_nan;
using cuda::SumOp;
using cuda::valid_target;

__global__ void crossentropy_forward_kernel(float* __restrict__ losses,
                                            const float* __restrict__ logits,
                                            const int32_t* __restrict__ targets, int N, int V,
                                            int Vp, int ignore_index) {
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const int32_t t = targets[n];
    if (t == ignore_index || !valid_target(t, V)) {
      if (cuda::thread_in_block() == 0) losses[n] = t == ignore_index ? 0.0f : quiet_nan();
      continue;
    }
    const float* x = logits + static_cast<size_t>(n) * Vp;
    const OnlineSoftmax s = block_row_softmax(x, V);
    if (cuda::thread_in_block() == 0) losses[n] = logf(s.sum) - (x[t] - s.max);
  }
}

__global__ void crossentropy_fused_kernel(float* x_to_dx, float* __restrict__ losses,
                                          const int32_t* __restrict__ targets, int N, int V, int Vp,
                                          int ignore_index, float dloss) {
  const int threads = static_cast<int>(blockDim.x);
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    float* x = x_to_dx + static_cast<size_t>(n) * Vp;
    const int32_t t = targets[n];
    if (t == ignore_index || !valid_target(t, V)) {
      if (cuda::thread_in_block() == 0) losses[n] = t == ignore_index ? 0.0f : quiet_nan();
      for (int j = cuda::thread_in_block(); j < Vp; j += threads) x[j] = 0.0f;
      continue;
    }
    const float xt = cuda::thread_in_block() == 0 ? x[t] : 0.0f;
    const OnlineSoftmax s = block_row_softmax(x, V);
    const float inv = 1.0f / s.sum;
    const float g = inv * dloss;
    for (int j = cuda::thread_in_block(); j < Vp; j += threads) {
      float d = 0.0f;
      if (j < V) {
        const float e = expf(x[j] - s.max);
        d = j == t ? (e * inv - 1.0f) * dloss : e * g;
      }
      x[j] = d;
    }
    if (cuda::thread_in_block() == 0) losses[n] = logf(s.sum) - (xt - s.max);
  }
}

__global__ void vp_crossentropy_sums_kernel(float* __restrict__ sum_exp,
                                            float* __restrict__ target_logit,
                                            const float* __restrict__ logits,
                                            const float* __restrict__ row_max,
                                            const int32_t* __restrict__ targets, int N, int Vl,
                                            int v0, int R, int ignore_index) {
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const float* x = logits + static_cast<size_t>(n) * Vl;
    const float mx = row_max[n];
    float sum = 0.0f;
    for (int j = cuda::thread_in_block(); j < R; j += static_cast<int>(blockDim.x)) {
      sum += expf(x[j] - mx);
    }
    sum = cuda::block_reduce(sum, SumOp{}, 0.0f);
    if (cuda::thread_in_block() == 0) {
      sum_exp[n] = sum;
      const int32_t t = targets[n];
      const bool here = t != ignore_index && t >= v0 && t < v0 + R;
      target_logit[n] = here ? x[t - v0] : 0.0f;
    }
  }
}

__device__ __forceinline__ float vp_loss(int32_t t, int V, int ignore_index, float row_max,
                                         float sum_exp, float target_logit) {
  if (t == ignore_index) return 0.0f;
  return valid_target(t, V) ? logf(sum_exp) + row_max - target_logit : quiet_nan();
}

__global__ void vp_crossentropy_loss_kernel(float* __restrict__ losses,
                                            const float* __restrict__ row_max,
                                            const float* __restrict__ sum_exp,
                                            const float* __restrict__ target_logit,
                                            const int32_t* __restrict__ targets, int N, int V,
                                            int ignore_index) {
  for (size_t n = cuda::global_thread(); n < static_cast<size_t>(N); n += cuda::grid_threads()) {
    losses[n] = vp_loss(targets[n], V, ignore_index, row_max[n], sum_exp[n], target_logit[n]);
  }
}

__global__ void vp_crossentropy_finish_kernel(float* __restrict__ losses, float* dlogits,
                                              const float* logits,
                                              const float* __restrict__ row_max,
                                              const float* __restrict__ sum_exp,
                                              const float* __restrict__ target_logit,
                                              const int32_t* __restrict__ targets, int N, int Vl,
                                              int v0, int V, int R, int ignore_index, float dloss) {
  const int threads = static_cast<int>(blockDim.x);
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    const int32_t t = targets[n];
    if (cuda::thread_in_block() == 0) {
      losses[n] = vp_loss(t, V, ignore_index, row_max[n], sum_exp[n], target_logit[n]);
    }
    const float* x = logits + static_cast<size_t>(n) * Vl;
    float* d = dlogits + static_cast<size_t>(n) * Vl;
    if (t == ignore_index || !valid_target(t, V)) {
      for (int j = cuda::thread_in_block(); j < Vl; j += threads) d[j] = 0.0f;
      continue;
    }
    const float mx = row_max[n];
    const float g = dloss / sum_exp[n];
    const int local_t = t - v0;
    for (int j = cuda::thread_in_block(); j < Vl; j += threads) {
      float v = 0.0f;
      if (j < R) {
        v = expf(x[j] - mx) * g;
        if (j == local_t) v -= dloss;
      }
      d[j] = v;
    }
  }
}
}  // namespace before

TEST(CudaLabelSmoothing, ZeroIsBitForBitTheKernelsOfBefore) {
  const int N = 8, V = 301, Vp = 320;
  const std::vector<int32_t> targets = {0, V - 1, kIgnore, 5, V, -3, 12, 3};
  FVec logits = random_floats(static_cast<size_t>(N) * Vp, 81, -8.0f, 8.0f);
  logits[5] = 80.0f;
  for (int j = 0; j < V; j += 3) logits[static_cast<size_t>(7) * Vp + j] = -INFINITY;
  const float dloss = 1.0f / 7.0f;
  for (const LaunchShape s : {cuda::kCrossEntropyRowShape, kOneWarpTwoBlocks}) {
    const std::string shape =
        "shape {" + std::to_string(s.threads) + ", " + std::to_string(s.max_blocks) + "}";
    const dim3 rows = cuda::impl::crossentropy_row_grid(N, s), block(s.threads);
    FVec now(N), then(N);
    cuda::impl::crossentropy_forward(gpu, now.data(), logits.data(), targets.data(), N, V, Vp,
                                     kIgnore, 0.0f, s);
    shim::launch(rows, block, before::crossentropy_forward_kernel, then.data(), logits.data(),
                 targets.data(), N, V, Vp, kIgnore);
    expect_bits(now, then, "forward, " + shape);

    FVec d_now = logits, d_then = logits;
    cuda::impl::crossentropy_fused(gpu, d_now.data(), now.data(), targets.data(), N, V, Vp, kIgnore,
                                   0.0f, dloss, s);
    shim::launch(rows, block, before::crossentropy_fused_kernel, d_then.data(), then.data(),
                 targets.data(), N, V, Vp, kIgnore, dloss);
    expect_bits(now, then, "fused losses, " + shape);
    expect_bits(d_now, d_then, "fused dlogits, " + shape);

    // Vocab-parallel: 2 shards of 160 columns (the second one ends in 19 padded columns).
    const int Vl = Vp / 2;
    FVec mx(N, -INFINITY), m(N), se(N, 0.0f), tl(N, 0.0f);
    FVec shard[2];
    for (int r = 0; r < 2; ++r) {
      for (int n = 0; n < N; ++n) {
        shard[r].insert(shard[r].end(), logits.begin() + static_cast<long>(n) * Vp + r * Vl,
                        logits.begin() + static_cast<long>(n) * Vp + (r + 1) * Vl);
      }
      cuda::impl::vp_crossentropy_max(gpu, m.data(), shard[r].data(), N, Vl, r * Vl, V, s);
      for (int n = 0; n < N; ++n) mx[n] = std::max(mx[n], m[n]);
    }
    for (int r = 0; r < 2; ++r) {
      const int R = cuda::real_local(Vl, r * Vl, V);
      FVec se_now(N), tl_now(N), se_then(N), tl_then(N);
      cuda::impl::vp_crossentropy_sums(gpu, se_now.data(), tl_now.data(), nullptr, shard[r].data(),
                                       mx.data(), targets.data(), N, Vl, r * Vl, V, kIgnore, s);
      shim::launch(rows, block, before::vp_crossentropy_sums_kernel, se_then.data(), tl_then.data(),
                   shard[r].data(), mx.data(), targets.data(), N, Vl, r * Vl, R, kIgnore);
      expect_bits(se_now, se_then, "sum_exp, shard " + std::to_string(r) + ", " + shape);
      expect_bits(tl_now, tl_then, "target_logit, shard " + std::to_string(r) + ", " + shape);
      for (int n = 0; n < N; ++n) {
        se[n] += se_now[n];
        tl[n] += tl_now[n];
      }
    }
    for (int r = 0; r < 2; ++r) {
      const int R = cuda::real_local(Vl, r * Vl, V);
      const std::string what = "shard " + std::to_string(r) + ", " + shape;
      FVec l_now(N), l_then(N), dn(shard[r].size()), dt(shard[r].size());
      cuda::impl::vp_crossentropy_finish(gpu, l_now.data(), dn.data(), shard[r].data(), mx.data(),
                                         se.data(), tl.data(), nullptr, targets.data(), N, Vl,
                                         r * Vl, V, kIgnore, 0.0f, dloss, s, kOneWarpTwoBlocks);
      shim::launch(rows, block, before::vp_crossentropy_finish_kernel, l_then.data(), dt.data(),
                   shard[r].data(), mx.data(), se.data(), tl.data(), targets.data(), N, Vl, r * Vl,
                   V, R, kIgnore, dloss);
      expect_bits(l_now, l_then, "finish losses, " + what);
      expect_bits(dn, dt, "finish dlogits, " + what);
      FVec only_now(N), only_then(N);
      const LaunchShape ls = kOneWarpTwoBlocks;
      cuda::impl::vp_crossentropy_finish(
          gpu, only_now.data(), static_cast<float*>(nullptr), shard[r].data(), mx.data(), se.data(),
          tl.data(), nullptr, targets.data(), N, Vl, r * Vl, V, kIgnore, 0.0f, dloss, s, ls);
      shim::launch(dim3(cuda::grid_blocks(N, ls.threads, ls.max_blocks)), dim3(ls.threads),
                   before::vp_crossentropy_loss_kernel, only_then.data(), mx.data(), se.data(),
                   tl.data(), targets.data(), N, V, kIgnore);
      expect_bits(only_now, only_then, "losses only, " + what);
    }
  }
}

}  // namespace
}  // namespace ph
