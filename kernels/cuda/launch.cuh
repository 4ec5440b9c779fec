// Launch shapes and grid-stride indexing shared by the kernel headers. The grid of every
// launch is a function of the problem size and a LaunchShape only (never of the device), so
// a reduction adds in the same order on every GPU and in the host tests.
#pragma once
#include <cstddef>

#include "kernels/cuda/device_compat.h"

namespace ph::cuda {

inline constexpr int kWarpSize = 32;
inline constexpr int kMaxThreads = 1024;  // per block
inline constexpr unsigned kFullMask = 0xffffffffu;

// Block size and grid cap of a launch: threads is a multiple of kWarpSize in
// [kWarpSize, kMaxThreads]; a grid-stride kernel launches at most max_blocks blocks and loops
// over the remaining work. Each op has a production shape; the tests also run small ones.
struct LaunchShape {
  int threads;
  int max_blocks;
};

// Blocks for `items` units of work, `per_block` units per block, capped at max_blocks and at
// least 1.
inline unsigned grid_blocks(size_t items, size_t per_block, int max_blocks) {
  const size_t need = (items + per_block - 1) / per_block;
  const size_t cap = static_cast<size_t>(max_blocks);
  return static_cast<unsigned>(need < 1 ? 1 : (need > cap ? cap : need));
}

// Grid-stride indexing over a flat range: start at global_thread(), step grid_threads().
__device__ __forceinline__ size_t global_thread() {
  return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ size_t grid_threads() {
  return static_cast<size_t>(gridDim.x) * blockDim.x;
}

// Thread, lane and warp numbers of a 1-D block as int.
__device__ __forceinline__ int thread_in_block() {
  return static_cast<int>(threadIdx.x);
}
__device__ __forceinline__ int lane_id() {
  return static_cast<int>(threadIdx.x) % kWarpSize;
}
__device__ __forceinline__ int warp_id() {
  return static_cast<int>(threadIdx.x) / kWarpSize;
}
__device__ __forceinline__ int warps_per_block() {
  return static_cast<int>(blockDim.x) / kWarpSize;
}

}  // namespace ph::cuda
