// Embedding kernels.
//
// Forward: one block per (b, t) row (grid-stride over rows), threads across the C channels.
//
// Backward without atomics, in the CPU backend's order. Rows of dwte collect the positions
// that hold their token, so a plain parallel scatter would race. Instead each thread owns one
// channel c of one group of vocabulary rows (row % groups == blockIdx.y) and walks all B*T
// positions in order, adding the ones whose token falls in its group: no two threads write
// the same float, and every dwte[row, c] sums its terms in (b, t) order. The block stages the
// positions' rows in shared memory a tile at a time (a broadcast read per position), and the
// branch is uniform across the block. The groups spread the updates over
// groups x ceil(C / threads) blocks. dpos[t, c] is a separate element-wise pass that sums
// b = 0 .. B-1 in order.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kEmbeddingForwardShape{256, 1 << 16};
// Backward: max_blocks is the total of channel tiles x vocabulary groups.
inline constexpr LaunchShape kEmbeddingBackwardShape{256, 128};
inline constexpr LaunchShape kEmbeddingPosShape{256, 1 << 16};

__global__ void embedding_forward_kernel(float* __restrict__ out,
                                         const int32_t* __restrict__ tokens,
                                         const float* __restrict__ wte,
                                         const float* __restrict__ pos, int BT, int T, int C,
                                         int vocab_start, int V_local, float scale) {
  for (int bt = static_cast<int>(blockIdx.x); bt < BT; bt += static_cast<int>(gridDim.x)) {
    const int row = tokens[bt] - vocab_start;
    const bool in_range = row >= 0 && row < V_local;
    const float* w = wte + static_cast<size_t>(in_range ? row : 0) * C;
    const float* p = pos ? pos + static_cast<size_t>(bt % T) * C : nullptr;
    float* y = out + static_cast<size_t>(bt) * C;
    for (int c = thread_in_block(); c < C; c += static_cast<int>(blockDim.x)) {
      float v = in_range ? scale * w[c] : 0.0f;
      if (p) v = in_range ? v + p[c] : p[c];
      y[c] = v;
    }
  }
}

__global__ void embedding_backward_wte_kernel(float* __restrict__ dwte,
                                              const float* __restrict__ dout,
                                              const int32_t* __restrict__ tokens, int BT, int C,
                                              int vocab_start, int V_local, float scale) {
  __shared__ int tile_rows[kMaxThreads];  // dwte row of each staged position, -1: not ours
  const int tid = thread_in_block();
  const int threads = static_cast<int>(blockDim.x);
  const int groups = static_cast<int>(gridDim.y);
  const int group = static_cast<int>(blockIdx.y);
  for (int tile = static_cast<int>(blockIdx.x) * threads; tile < C;
       tile += static_cast<int>(gridDim.x) * threads) {
    const int c = tile + tid;
    for (int base = 0; base < BT; base += threads) {
      int row = -1;
      if (base + tid < BT) {
        const int r = tokens[base + tid] - vocab_start;
        if (r >= 0 && r < V_local && r % groups == group) row = r;
      }
      __syncthreads();  // the previous tile has been consumed
      tile_rows[tid] = row;
      __syncthreads();
      const int count = BT - base < threads ? BT - base : threads;
      if (c < C) {
        for (int j = 0; j < count; ++j) {
          const int r = tile_rows[j];
          if (r >= 0) {
            dwte[static_cast<size_t>(r) * C + c] +=
                scale * dout[static_cast<size_t>(base + j) * C + c];
          }
        }
      }
    }
  }
}

__global__ void embedding_backward_pos_kernel(float* __restrict__ dpos,
                                              const float* __restrict__ dout, int B, int T, int C) {
  const size_t TC = static_cast<size_t>(T) * C;
  for (size_t i = global_thread(); i < TC; i += grid_threads()) {
    float acc = dpos[i];
    for (int b = 0; b < B; ++b) acc += dout[static_cast<size_t>(b) * TC + i];
    dpos[i] = acc;
  }
}

__global__ void sinusoidal_table_kernel(float* table, int T, int C) {
  const size_t TC = static_cast<size_t>(T) * C;
  for (size_t i = global_thread(); i < TC; i += grid_threads()) {
    const int t = static_cast<int>(i / static_cast<size_t>(C));
    const int c = static_cast<int>(i % static_cast<size_t>(C));
    const int two_i = c - c % 2;  // columns 2i and 2i+1 share a frequency
    const double angle = t / pow(10000.0, static_cast<double>(two_i) / C);
    table[i] = static_cast<float>(c % 2 == 0 ? sin(angle) : cos(angle));
  }
}

namespace impl {

template <typename Launch>
void embedding_forward(const Launch& launch, float* out, const int32_t* tokens, const float* wte,
                       const float* pos, int B, int T, int C, int vocab_start, int V_local,
                       float scale, LaunchShape s = kEmbeddingForwardShape) {
  const int BT = B * T;
  if (BT <= 0 || C <= 0) return;
  launch(dim3(grid_blocks(BT, 1, s.max_blocks)), dim3(s.threads), embedding_forward_kernel, out,
         tokens, wte, pos, BT, T, C, vocab_start, V_local, scale);
}

// Grid of the dwte pass: x = channel tiles of s.threads channels, y = vocabulary groups (as
// many as fit in s.max_blocks, at least 1, at most V_local).
inline dim3 embedding_backward_wte_grid(int C, int V_local, LaunchShape s) {
  const int tiles = (C + s.threads - 1) / s.threads;
  int groups = s.max_blocks / tiles;
  if (groups > V_local) groups = V_local;
  if (groups > 65535) groups = 65535;
  if (groups < 1) groups = 1;
  return dim3(static_cast<unsigned>(tiles), static_cast<unsigned>(groups));
}

template <typename Launch>
void embedding_backward(const Launch& launch, float* dwte, float* dpos, const float* dout,
                        const int32_t* tokens, int B, int T, int C, int vocab_start, int V_local,
                        float scale, LaunchShape s = kEmbeddingBackwardShape,
                        LaunchShape pos_shape = kEmbeddingPosShape) {
  const int BT = B * T;
  if (BT <= 0 || C <= 0) return;
  if (V_local > 0) {
    launch(embedding_backward_wte_grid(C, V_local, s), dim3(s.threads),
           embedding_backward_wte_kernel, dwte, dout, tokens, BT, C, vocab_start, V_local, scale);
  }
  if (dpos) {
    const size_t TC = static_cast<size_t>(T) * C;
    launch(dim3(grid_blocks(TC, pos_shape.threads, pos_shape.max_blocks)), dim3(pos_shape.threads),
           embedding_backward_pos_kernel, dpos, dout, B, T, C);
  }
}

template <typename Launch>
void sinusoidal_table(const Launch& launch, float* table, int T, int C,
                      LaunchShape s = kEmbeddingPosShape) {
  if (T <= 0 || C <= 0) return;
  const size_t TC = static_cast<size_t>(T) * C;
  launch(dim3(grid_blocks(TC, s.threads, s.max_blocks)), dim3(s.threads), sinusoidal_table_kernel,
         table, T, C);
}

}  // namespace impl
}  // namespace ph::cuda
