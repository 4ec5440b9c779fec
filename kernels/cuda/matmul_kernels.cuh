// Linear layer (kernels/cuda/matmul.h): the products are the cuBLAS plans of
// kernels/cuda/gemm_plan.h, the bias two kernels.
//
// Bias add: out [N, OC] += bias [OC]. A block per row (grid-stride over rows), its threads
// across the columns.
//
// dbias [OC] += column sums of dout [N, OC], without atomics. A block owns tiles of 32 columns
// (grid-stride over tiles); lane l of every warp reads column tile * 32 + l (a warp reads 32
// consecutive floats of a row), warp w sums rows w, w + warps, ... in order, then warp 0 adds
// the warps' sums in warp order through shared memory. The order of the additions depends on
// the block size only, never on the grid: the same on every GPU.
//
// Operands: the drivers hand every GEMM its A and B through `ops` (OperandsAsIs: the fp32
// buffers; OperandsToBf16: bfloat16 copies made by the kernel of kernels/cuda/bf16_kernels.cuh),
// so fp32 and bf16 mode issue the same plans in the same order.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/cuda/bf16_kernels.cuh"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kBiasAddShape{256, 1 << 16};          // a block per row
inline constexpr LaunchShape kBiasSumShape{kMaxThreads, 1 << 16};  // 32 columns per block

__global__ void add_bias_kernel(float* __restrict__ out, const float* __restrict__ bias, int N,
                                int OC) {
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    float* row = out + static_cast<size_t>(n) * OC;
    for (int c = thread_in_block(); c < OC; c += static_cast<int>(blockDim.x)) row[c] += bias[c];
  }
}

// OC >= 1.
__global__ void bias_column_sum_kernel(float* __restrict__ dbias, const float* __restrict__ dout,
                                       int N, int OC) {
  __shared__ float partial[kMaxThreads];  // [warp][lane]
  const int lane = lane_id(), warp = warp_id(), warps = warps_per_block();
  const int tiles = (OC - 1) / kWarpSize + 1;
  for (int tile = static_cast<int>(blockIdx.x); tile < tiles; tile += static_cast<int>(gridDim.x)) {
    const int col = tile * kWarpSize + lane;
    float acc = 0.0f;
    if (col < OC) {
      for (int n = warp; n < N; n += warps) acc += dout[static_cast<size_t>(n) * OC + col];
    }
    __syncthreads();  // warp 0 is done with the previous tile's sums
    partial[thread_in_block()] = acc;
    __syncthreads();
    if (warp == 0 && col < OC) {
      float sum = 0.0f;
      for (int k = 0; k < warps; ++k) sum += partial[k * kWarpSize + lane];
      dbias[col] += sum;
    }
  }
}

namespace impl {

// Blocks of a dbias launch: one per tile of 32 columns, at most s.max_blocks.
inline unsigned bias_sum_blocks(int OC, LaunchShape s) {
  return grid_blocks(static_cast<size_t>(OC), kWarpSize, s.max_blocks);
}

template <typename Launch>
void add_bias(const Launch& launch, float* out, const float* bias, int N, int OC,
              LaunchShape s = kBiasAddShape) {
  if (N <= 0 || OC <= 0) return;
  launch(dim3(grid_blocks(static_cast<size_t>(N), 1, s.max_blocks)), dim3(s.threads),
         add_bias_kernel, out, bias, N, OC);
}

template <typename Launch>
void bias_column_sum(const Launch& launch, float* dbias, const float* dout, int N, int OC,
                     LaunchShape s = kBiasSumShape) {
  if (N <= 0 || OC <= 0) return;
  launch(dim3(bias_sum_blocks(OC, s)), dim3(s.threads), bias_column_sum_kernel, dbias, dout, N, OC);
}

// GEMM operands in fp32 mode: the buffers themselves.
struct OperandsAsIs {
  const float* a(const float* x, size_t) const { return x; }
  const float* b(const float* x, size_t) const { return x; }
};

// GEMM operands in bf16 mode: x [n] converted into buffer a or b (gemm_plan.h, Bf16Buffers),
// which must hold n elements. A conversion is queued after the work that read the buffer
// before it (one stream).
template <typename Launch>
struct OperandsToBf16 {
  Launch launch;
  Bf16Buffers buffers;
  const uint16_t* a(const float* x, size_t n) const { return convert(buffers.a, x, n); }
  const uint16_t* b(const float* x, size_t n) const { return convert(buffers.b, x, n); }

 private:
  const uint16_t* convert(uint16_t* out, const float* x, size_t n) const {
    to_bf16(launch, out, x, n);
    return out;
  }
};

// The whole op (kernels/cuda/matmul.h states the contract). gemm(plan, A, B, C) runs a plan of
// kernels/cuda/gemm_plan.h on the operands `ops` gives it; matmul.cu passes cuBLAS and the
// stream launcher, the host tests a reference GEMM and the shim.
//   forward:  out = inp w^T; out += bias
//   backward: dinp += dout w; dw += dout^T inp; dbias += column sums of dout (fp32 dout)
template <typename Gemm, typename Launch, typename Operands = OperandsAsIs>
void matmul_forward(const Gemm& gemm, const Launch& launch, float* out, const float* inp,
                    const float* w, const float* bias, int N, int IC, int OC,
                    LaunchShape s = kBiasAddShape, const Operands& ops = {}) {
  if (N <= 0 || OC <= 0) return;
  const size_t n = static_cast<size_t>(N), ic = static_cast<size_t>(IC);
  const auto* a = ops.a(w, static_cast<size_t>(OC) * ic);
  const auto* b = ops.b(inp, n * ic);
  gemm(matmul_forward_plan(N, IC, OC), a, b, out);
  if (bias) add_bias(launch, out, bias, N, OC, s);
}

template <typename Gemm, typename Launch, typename Operands = OperandsAsIs>
void matmul_backward(const Gemm& gemm, const Launch& launch, float* dinp, float* dw, float* dbias,
                     const float* dout, const float* inp, const float* w, int N, int IC, int OC,
                     LaunchShape s = kBiasSumShape, const Operands& ops = {}) {
  if (N <= 0 || OC <= 0) return;
  const size_t n = static_cast<size_t>(N), ic = static_cast<size_t>(IC);
  const auto* d = ops.b(dout, n * static_cast<size_t>(OC));
  if (dinp) gemm(matmul_dinp_plan(N, IC, OC), ops.a(w, static_cast<size_t>(OC) * ic), d, dinp);
  gemm(matmul_dw_plan(N, IC, OC), ops.a(inp, n * ic), d, dw);
  if (dbias) bias_column_sum(launch, dbias, dout, N, OC, s);
}

}  // namespace impl
}  // namespace ph::cuda
