// Test-only CUDA shim: compiles the kernel headers (kernels/cuda/*_kernels.cuh) with the host
// compiler and runs their grids on OS threads, so that the CPU tests exercise the very kernel
// code — index math, shared memory, barriers, warp reductions — that the GPU runs.
//
// Include it before any kernel header. What it emulates (the dialect of
// kernels/cuda/device_compat.h):
// - __global__, __device__, __host__, __forceinline__, __launch_bounds__ expand to (almost)
//   nothing; __shared__ expands to `static`. Blocks run one after another, so a function-local
//   static is exactly one block's shared memory: shared by the threads of the running block,
//   reused by the next block (uninitialised for the kernel, as on a GPU).
// - threadIdx, blockIdx, blockDim, gridDim are thread_local.
// - launch(grid, block, kernel, args...) runs the grid with one std::thread per CUDA thread of
//   a block; the threads walk the blocks in order (x fastest) and meet at a barrier between
//   blocks. __syncthreads is a std::barrier over the block; __syncthreads_or/_and/_count vote
//   through it.
// - Warp intrinsics (__shfl_sync, __shfl_xor_sync, __shfl_down_sync, __shfl_up_sync,
//   __syncwarp, __any_sync, __all_sync, __ballot_sync) exchange values through per-warp slots
//   between two barriers of the warp's 32 threads. Only full-warp masks are supported, so every
//   lane must take part (as the kernels' contract requires anyway).
// - __float_as_uint and friends, rsqrtf, __expf, __logf, __fdividef.
// Stricter than a GPU, to catch bugs the GPU would hide or turn into undefined behaviour: a
// launch must be a valid CUDA configuration of whole warps (else std::invalid_argument), every
// thread of a block must pass the same number of __syncthreads (else std::runtime_error), and
// a grid that does not finish within PH_SHIM_TIMEOUT seconds (default 120; a barrier some
// threads never reach) aborts the process with a message instead of hanging.
// One launch at a time: the static "shared memory" is shared by concurrent launches.
#pragma once

#define PH_CUDA_SHIM 1

#include <atomic>
#include <barrier>
#include <bit>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct uint3 {
  unsigned int x, y, z;
};

struct dim3 {
  unsigned int x, y, z;
  constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1)
      : x(vx), y(vy), z(vz) {}
};

inline thread_local uint3 threadIdx{0, 0, 0};
inline thread_local uint3 blockIdx{0, 0, 0};
inline thread_local dim3 blockDim;
inline thread_local dim3 gridDim;

namespace ph::shim {

inline constexpr int kWarpSize = 32;
inline constexpr unsigned kFullMask = 0xffffffffu;

namespace detail {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "cuda_shim: %s\n", what);
  std::abort();
}

struct Warp {
  Warp() : barrier(kWarpSize) {}
  std::barrier<> barrier;
  alignas(8) unsigned char slots[kWarpSize][8];
};

struct Block {
  explicit Block(int n) : threads(n), barrier(n), warps(n / kWarpSize) {
    for (auto& w : warps) w = std::make_unique<Warp>();
    for (auto& c : sync_counts) c.assign(n, 0);
  }
  int threads;
  std::barrier<> barrier;
  std::vector<std::unique_ptr<Warp>> warps;
  std::atomic<int> votes[3] = {0, 0, 0};  // rotating tallies of __syncthreads_count
  std::vector<long> sync_counts[2];       // per thread, blocks of alternate parity
  std::mutex mutex;                       // guards what follows
  std::string error;                      // first contract violation seen
  int finished = 0;                       // threads done with the whole grid
  std::condition_variable all_finished;
};

struct ThreadState {
  Block* block = nullptr;
  Warp* warp = nullptr;
  int tid = 0;
  int lane = 0;
  long syncs = 0;  // barriers passed in the current block
  long votes = 0;  // __syncthreads_count calls since the launch
};

inline thread_local ThreadState self_state;

inline ThreadState& self() {
  ThreadState& t = self_state;
  if (!t.block) fail("a CUDA intrinsic was called outside a launch");
  return t;
}

inline void record_error(Block& b, const std::string& what) {
  const std::lock_guard<std::mutex> lock(b.mutex);
  if (b.error.empty()) b.error = what;
}

// Thread `tid` of every block of the grid, blocks in order.
inline void run_thread(Block& b, dim3 grid, dim3 block, int tid,
                       const std::function<void()>& body) {
  const unsigned u = static_cast<unsigned>(tid);
  threadIdx = uint3{u % block.x, (u / block.x) % block.y, u / (block.x * block.y)};
  blockDim = block;
  gridDim = grid;
  ThreadState& t = self_state;
  t = ThreadState{&b, b.warps[tid / kWarpSize].get(), tid, tid % kWarpSize, 0, 0};
  int parity = 0;
  for (unsigned z = 0; z < grid.z; ++z) {
    for (unsigned y = 0; y < grid.y; ++y) {
      for (unsigned x = 0; x < grid.x; ++x) {
        blockIdx = uint3{x, y, z};
        t.syncs = 0;
        body();
        b.sync_counts[parity][tid] = t.syncs;
        b.barrier.arrive_and_wait();  // the block is done: its shared memory may be reused
        if (tid == 0) {
          for (int k = 1; k < b.threads; ++k) {
            if (b.sync_counts[parity][k] != b.sync_counts[parity][0]) {
              char msg[160];
              std::snprintf(msg, sizeof msg,
                            "block (%u,%u,%u): thread 0 passed %ld __syncthreads, thread %d "
                            "passed %ld",
                            x, y, z, b.sync_counts[parity][0], k, b.sync_counts[parity][k]);
              record_error(b, msg);
              break;
            }
          }
        }
        parity ^= 1;
      }
    }
  }
  t = ThreadState{};
  const std::lock_guard<std::mutex> lock(b.mutex);
  ++b.finished;
  b.all_finished.notify_all();
}

inline std::string dims(dim3 d) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "(%u,%u,%u)", d.x, d.y, d.z);
  return buf;
}

// Throws std::invalid_argument unless (grid, block) is a valid CUDA launch of whole warps.
inline void check_configuration(dim3 grid, dim3 block) {
  const unsigned long long threads = static_cast<unsigned long long>(block.x) * block.y * block.z;
  const char* bad = nullptr;
  if (grid.x < 1 || grid.y < 1 || grid.z < 1)
    bad = "an empty grid";
  else if (grid.x > 2147483647u || grid.y > 65535u || grid.z > 65535u)
    bad = "a grid too large";
  else if (threads < 1 || threads > 1024 || block.x > 1024 || block.y > 1024 || block.z > 64)
    bad = "an invalid block";
  else if (threads % kWarpSize != 0)
    bad = "a block of partial warps (not emulated)";
  if (bad) {
    throw std::invalid_argument(std::string("cuda_shim: launch with ") + bad + ": grid " +
                                dims(grid) + ", block " + dims(block));
  }
}

inline int timeout_seconds() {
  const char* s = std::getenv("PH_SHIM_TIMEOUT");
  const int v = s ? std::atoi(s) : 0;
  return v > 0 ? v : 120;
}

inline void run_grid(dim3 grid, dim3 block, const std::function<void()>& body) {
  check_configuration(grid, block);
  const int n = static_cast<int>(block.x * block.y * block.z);
  Block b(n);
  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(n));
  for (int tid = 0; tid < n; ++tid) {
    threads.emplace_back([&b, grid, block, tid, &body] { run_thread(b, grid, block, tid, body); });
  }
  {
    std::unique_lock<std::mutex> lock(b.mutex);
    const bool done = b.all_finished.wait_for(lock, std::chrono::seconds(timeout_seconds()),
                                              [&b] { return b.finished == b.threads; });
    if (!done) {
      std::fprintf(stderr,
                   "cuda_shim: a launch (grid %s, block %s) did not finish within %d s: a "
                   "barrier or warp exchange that some threads never reach? %s\n",
                   dims(grid).c_str(), dims(block).c_str(), timeout_seconds(), b.error.c_str());
      std::abort();
    }
  }
  for (std::thread& t : threads) t.join();
  if (!b.error.empty()) throw std::runtime_error("cuda_shim: " + b.error);
}

// The value of `v` held by lane `src` (own value when src is not a lane of the segment).
template <typename T>
T warp_exchange(unsigned mask, T v, int src) {
  static_assert(std::is_trivially_copyable_v<T> && sizeof(T) <= 8, "shuffle of a word");
  if (mask != kFullMask) fail("only full-warp masks (0xffffffff) are emulated");
  ThreadState& t = self();
  Warp& w = *t.warp;
  std::memcpy(w.slots[t.lane], &v, sizeof(T));
  w.barrier.arrive_and_wait();
  T r = v;
  if (src >= 0 && src < kWarpSize) std::memcpy(&r, w.slots[src], sizeof(T));
  w.barrier.arrive_and_wait();  // every lane has read before the slots are reused
  return r;
}

inline void check_width(int width) {
  if (width < 1 || width > kWarpSize || (width & (width - 1)) != 0) {
    fail("shuffle width must be a power of two in [1, 32]");
  }
}

// Votes of all lanes of the warp as a 32-bit mask (bit k: lane k).
inline unsigned warp_ballot(unsigned mask, int pred) {
  if (mask != kFullMask) fail("only full-warp masks (0xffffffff) are emulated");
  ThreadState& t = self();
  Warp& w = *t.warp;
  w.slots[t.lane][0] = pred != 0 ? 1 : 0;
  w.barrier.arrive_and_wait();
  unsigned bits = 0;
  for (int k = 0; k < kWarpSize; ++k) bits |= static_cast<unsigned>(w.slots[k][0]) << k;
  w.barrier.arrive_and_wait();
  return bits;
}

// Number of threads of the block with pred != 0. Tallies rotate over three slots: thread 0
// clears the slot of the next call before the barrier of this one, when every thread has
// read it (two barriers ago) and none can write it yet (one barrier ahead).
inline int block_vote(int pred) {
  ThreadState& t = self();
  Block& b = *t.block;
  const long k = t.votes++;
  if (t.tid == 0) b.votes[(k + 1) % 3].store(0, std::memory_order_relaxed);
  if (pred) b.votes[k % 3].fetch_add(1, std::memory_order_relaxed);
  ++t.syncs;
  b.barrier.arrive_and_wait();
  return b.votes[k % 3].load(std::memory_order_relaxed);
}

}  // namespace detail

// Runs kernel(args...) over the grid (arguments converted to the kernel's parameter types
// once, as a CUDA launch does). Returns when every block has run; throws on an invalid
// configuration or a broken barrier contract.
template <typename... Params, typename... Args>
void launch(dim3 grid, dim3 block, void (*kernel)(Params...), Args&&... args) {
  static_assert(sizeof...(Params) == sizeof...(Args), "kernel argument count");
  const std::tuple<std::decay_t<Params>...> params(std::forward<Args>(args)...);
  detail::run_grid(grid, block, [&] { std::apply(kernel, params); });
}

// The launcher to hand the kernel drivers (impl:: functions of the kernel headers) in tests,
// in place of the .cu files' StreamLauncher.
struct Launcher {
  template <typename... Params, typename... Args>
  void operator()(dim3 grid, dim3 block, void (*kernel)(Params...), Args&&... args) const {
    launch(grid, block, kernel, std::forward<Args>(args)...);
  }
};

}  // namespace ph::shim

inline void __syncthreads() {
  ph::shim::detail::ThreadState& t = ph::shim::detail::self();
  ++t.syncs;
  t.block->barrier.arrive_and_wait();
}
inline int __syncthreads_count(int pred) {
  return ph::shim::detail::block_vote(pred);
}
inline int __syncthreads_or(int pred) {
  return ph::shim::detail::block_vote(pred) > 0 ? 1 : 0;
}
inline int __syncthreads_and(int pred) {
  return ph::shim::detail::block_vote(pred) == ph::shim::detail::self().block->threads ? 1 : 0;
}

inline void __syncwarp(unsigned mask = ph::shim::kFullMask) {
  if (mask != ph::shim::kFullMask) ph::shim::detail::fail("__syncwarp: full mask only");
  ph::shim::detail::self().warp->barrier.arrive_and_wait();
}

template <typename T>
T __shfl_sync(unsigned mask, T v, int src_lane, int width = ph::shim::kWarpSize) {
  ph::shim::detail::check_width(width);
  const int lane = ph::shim::detail::self().lane;
  return ph::shim::detail::warp_exchange(mask, v, lane / width * width + src_lane % width);
}
template <typename T>
T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = ph::shim::kWarpSize) {
  ph::shim::detail::check_width(width);
  const int lane = ph::shim::detail::self().lane;
  const int src = lane ^ lane_mask;
  return ph::shim::detail::warp_exchange(mask, v, src / width == lane / width ? src : lane);
}
template <typename T>
T __shfl_down_sync(unsigned mask, T v, unsigned delta, int width = ph::shim::kWarpSize) {
  ph::shim::detail::check_width(width);
  const int lane = ph::shim::detail::self().lane;
  const int d = static_cast<int>(delta);
  return ph::shim::detail::warp_exchange(mask, v, lane % width + d < width ? lane + d : lane);
}
template <typename T>
T __shfl_up_sync(unsigned mask, T v, unsigned delta, int width = ph::shim::kWarpSize) {
  ph::shim::detail::check_width(width);
  const int lane = ph::shim::detail::self().lane;
  const int d = static_cast<int>(delta);
  return ph::shim::detail::warp_exchange(mask, v, lane % width >= d ? lane - d : lane);
}

inline unsigned __ballot_sync(unsigned mask, int pred) {
  return ph::shim::detail::warp_ballot(mask, pred);
}
inline int __any_sync(unsigned mask, int pred) {
  return ph::shim::detail::warp_ballot(mask, pred) != 0 ? 1 : 0;
}
inline int __all_sync(unsigned mask, int pred) {
  return ph::shim::detail::warp_ballot(mask, pred) == ph::shim::kFullMask ? 1 : 0;
}

inline unsigned __float_as_uint(float x) {
  return std::bit_cast<unsigned>(x);
}
inline float __uint_as_float(unsigned x) {
  return std::bit_cast<float>(x);
}
inline int __float_as_int(float x) {
  return std::bit_cast<int>(x);
}
inline float __int_as_float(int x) {
  return std::bit_cast<float>(x);
}

inline float rsqrtf(float x) {
  return 1.0f / std::sqrt(x);
}
inline float __expf(float x) {
  return std::exp(x);
}
inline float __logf(float x) {
  return std::log(x);
}
inline float __fdividef(float x, float y) {
  return x / y;
}
