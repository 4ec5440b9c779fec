// The host CUDA shim (tests/cuda_shim.h) itself: per-block shared memory, barriers, block
// votes, warp shuffles and ballots behave as on a GPU, and broken launches are reported.
#include "tests/cuda_shim.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace {

// out[block] = sum of in over the block's slice, through shared memory and a tree of barriers;
// also records every thread's indices.
__global__ void block_sum_kernel(int* out, const int* in, unsigned* seen) {
  __shared__ int buf[256];
  const unsigned t = threadIdx.x;
  const unsigned block = blockIdx.y * gridDim.x + blockIdx.x;
  const unsigned g = block * blockDim.x + t;
  buf[t] = in[g];
  seen[g] = (blockIdx.y << 24) | (blockIdx.x << 16) | (gridDim.x << 8) | blockDim.x;
  __syncthreads();
  for (unsigned half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half) buf[t] += buf[t + half];
    __syncthreads();
  }
  if (t == 0) out[block] = buf[0];
}

TEST(CudaShim, SharedMemoryIsPerBlockAndIndicesAreRight) {
  const dim3 grid(3, 2), block(64);
  const int blocks = 6, threads = 64;
  std::vector<int> in(blocks * threads), out(blocks, -1);
  for (size_t i = 0; i < in.size(); ++i) in[i] = static_cast<int>(i % 97);
  std::vector<unsigned> seen(in.size());
  ph::shim::launch(grid, block, block_sum_kernel, out.data(), in.data(), seen.data());
  for (int b = 0; b < blocks; ++b) {
    int expect = 0;
    for (int t = 0; t < threads; ++t) expect += in[b * threads + t];
    EXPECT_EQ(out[b], expect) << "block " << b;
    for (int t = 0; t < threads; ++t) {
      const unsigned by = static_cast<unsigned>(b / 3), bx = static_cast<unsigned>(b % 3);
      EXPECT_EQ(seen[b * threads + t], (by << 24) | (bx << 16) | (3u << 8) | 64u);
    }
  }
}

// Lane l of each warp records what the shuffles give it.
__global__ void shuffle_kernel(int* out) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int v = static_cast<int>(threadIdx.x) * 10;
  int* o = out + threadIdx.x * 6;
  o[0] = __shfl_xor_sync(0xffffffffu, v, 5);
  o[1] = __shfl_down_sync(0xffffffffu, v, 3);
  o[2] = __shfl_up_sync(0xffffffffu, v, 2);
  o[3] = __shfl_sync(0xffffffffu, v, 7);
  o[4] = __shfl_xor_sync(0xffffffffu, v, 1, 4);  // width 4: within groups of four lanes
  o[5] = static_cast<int>(__ballot_sync(0xffffffffu, lane % 3 == 0) == 0x49249249u) +
         2 * __any_sync(0xffffffffu, lane == 31) + 4 * __all_sync(0xffffffffu, lane < 31);
}

TEST(CudaShim, WarpShufflesFollowCudaSemantics) {
  const int threads = 64;
  std::vector<int> out(threads * 6);
  ph::shim::launch(dim3(1), dim3(threads), shuffle_kernel, out.data());
  for (int t = 0; t < threads; ++t) {
    const int lane = t % 32, base = t - lane;
    const int* o = out.data() + t * 6;
    EXPECT_EQ(o[0], (base + (lane ^ 5)) * 10);
    EXPECT_EQ(o[1], (lane + 3 < 32 ? t + 3 : t) * 10);
    EXPECT_EQ(o[2], (lane >= 2 ? t - 2 : t) * 10);
    EXPECT_EQ(o[3], (base + 7) * 10);
    EXPECT_EQ(o[4], (base + (lane ^ 1)) * 10);
    EXPECT_EQ(o[5], 1 + 2 + 0);
  }
}

// Consecutive votes with changing predicates (the tallies rotate over reused slots).
__global__ void vote_kernel(int* out, int rounds) {
  const int t = static_cast<int>(threadIdx.x);
  for (int r = 0; r < rounds; ++r) {
    const int count = __syncthreads_count(t % (r + 1) == 0);
    const int any = __syncthreads_or(t == r);
    const int all = __syncthreads_and(t >= r);
    if (t == 0) out[blockIdx.x * rounds + r] = count * 100 + any * 10 + all;
  }
}

TEST(CudaShim, BlockVotes) {
  const int threads = 32, rounds = 40, blocks = 2;
  std::vector<int> out(blocks * rounds);
  ph::shim::launch(dim3(blocks), dim3(threads), vote_kernel, out.data(), rounds);
  for (int b = 0; b < blocks; ++b) {
    for (int r = 0; r < rounds; ++r) {
      const int count = (threads - 1) / (r + 1) + 1;
      const int any = r < threads ? 1 : 0, all = r == 0 ? 1 : 0;
      EXPECT_EQ(out[b * rounds + r], count * 100 + any * 10 + all) << "round " << r;
    }
  }
}

__global__ void nothing_kernel() {}

TEST(CudaShim, InvalidConfigurationsAreRejected) {
  EXPECT_THROW(ph::shim::launch(dim3(0), dim3(32), nothing_kernel), std::invalid_argument);
  EXPECT_THROW(ph::shim::launch(dim3(1, 70000), dim3(32), nothing_kernel), std::invalid_argument);
  EXPECT_THROW(ph::shim::launch(dim3(1), dim3(2048), nothing_kernel), std::invalid_argument);
  EXPECT_THROW(ph::shim::launch(dim3(1), dim3(48), nothing_kernel), std::invalid_argument);
  EXPECT_NO_THROW(ph::shim::launch(dim3(2), dim3(1024), nothing_kernel));
}

// Block 0: thread 0 passes one barrier more than the others; block 1: the others pass one
// more than thread 0. The phases happen to line up again, so the grid finishes; the shim must
// still report the mismatch.
__global__ void divergent_barrier_kernel() {
  const bool first = threadIdx.x == 0;
  if (blockIdx.x == 0 ? first : !first) __syncthreads();
}

TEST(CudaShim, DivergentBarrierCountsAreReported) {
  EXPECT_THROW(ph::shim::launch(dim3(2), dim3(32), divergent_barrier_kernel), std::runtime_error);
}

}  // namespace
