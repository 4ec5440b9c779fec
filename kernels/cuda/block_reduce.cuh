// Warp and block reductions in a fixed order: a butterfly of __shfl_xor_sync inside each warp,
// then the warps' results through shared memory. Every lane of every warp ends with the same
// bits, and the result does not depend on timing: deterministic, no atomics.
#pragma once
#include "kernels/common/online_softmax.h"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

struct SumOp {
  template <typename T>
  __device__ __forceinline__ T operator()(T a, T b) const {
    return a + b;
  }
};

struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};

// All 32 lanes must call it (full warp).
template <typename T, typename Op>
__device__ __forceinline__ T warp_reduce(T v, Op op) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    v = op(v, __shfl_xor_sync(kFullMask, v, offset));
  }
  return v;
}

// Every thread of the block must call it; every thread gets the result. `identity` fills the
// slots of absent warps. Safe to call repeatedly (it synchronises before reusing its buffer).
template <typename T, typename Op>
__device__ T block_reduce(T v, Op op, T identity) {
  __shared__ T warp_results[kMaxThreads / kWarpSize];
  v = warp_reduce(v, op);
  __syncthreads();  // a previous call may still be reading warp_results
  if (lane_id() == 0) warp_results[warp_id()] = v;
  __syncthreads();
  v = lane_id() < warps_per_block() ? warp_results[lane_id()] : identity;
  return warp_reduce(v, op);
}

__device__ __forceinline__ OnlineSoftmax warp_reduce_softmax(OnlineSoftmax s) {
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const OnlineSoftmax other{__shfl_xor_sync(kFullMask, s.max, offset),
                              __shfl_xor_sync(kFullMask, s.sum, offset)};
    s = online_softmax_merge(s, other);
  }
  return s;
}

// The online-softmax state of a whole block (same contract as block_reduce).
__device__ inline OnlineSoftmax block_reduce_softmax(OnlineSoftmax s) {
  __shared__ float warp_max[kMaxThreads / kWarpSize];
  __shared__ float warp_sum[kMaxThreads / kWarpSize];
  s = warp_reduce_softmax(s);
  __syncthreads();
  if (lane_id() == 0) {
    warp_max[warp_id()] = s.max;
    warp_sum[warp_id()] = s.sum;
  }
  __syncthreads();
  s = lane_id() < warps_per_block() ? OnlineSoftmax{warp_max[lane_id()], warp_sum[lane_id()]}
                                    : OnlineSoftmax{};
  return warp_reduce_softmax(s);
}

}  // namespace ph::cuda
