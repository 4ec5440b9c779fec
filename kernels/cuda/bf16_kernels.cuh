// fp32 → bfloat16 conversion for the bf16 GEMMs: a grid-stride loop over a flat buffer, each
// element rounded by kernels/common/bf16.h (the function the CPU backend rounds with). The
// output is the 16 bits of each bfloat16 (what cuBLAS reads as CUDA_R_16BF).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/common/bf16.h"
#include "kernels/cuda/device_compat.h"
#include "kernels/cuda/launch.cuh"

namespace ph::cuda {

inline constexpr LaunchShape kToBf16Shape{256, 1 << 16};

__global__ void to_bf16_kernel(uint16_t* __restrict__ out, const float* __restrict__ in, size_t n) {
  for (size_t i = global_thread(); i < n; i += grid_threads()) out[i] = bf16_bits(in[i]);
}

namespace impl {

// out [n] = bf16_bits(in [n]).
template <typename Launch>
void to_bf16(const Launch& launch, uint16_t* out, const float* in, size_t n,
             LaunchShape s = kToBf16Shape) {
  if (n == 0) return;
  launch(dim3(grid_blocks(n, s.threads, s.max_blocks)), dim3(s.threads), to_bf16_kernel, out, in,
         n);
}

}  // namespace impl
}  // namespace ph::cuda
