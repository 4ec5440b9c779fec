// Multi-head scaled dot-product attention on a fused q|k|v buffer, on the GPU: the products are
// the cuBLAS plans of kernels/cuda/gemm_plan.h, the masked softmax, its backward and dropout
// the row kernels of kernels/cuda/attention_kernels.cuh. Same contracts as
// kernels/cpu/attention.h on device pointers (same probabilities, same dropout masks); the
// work is queued on `stream` (the handle is bound to it).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/common/dropout_mask.h"
#include "kernels/cpu/attention.h"

namespace ph::cuda {

using AttentionCoords = cpu::AttentionCoords;

// qkv [B, T, 3*C], att [B, H, T, T] (probabilities before dropout, kept for backward), out
// [B, T, C], key_mask [B, T] or null, as in kernels/cpu/attention.h. dropped is scratch
// [B, H, T, T] for the probabilities after dropout, used only when drop.p > 0 (may be null
// otherwise); it is free again when the call returns (the same buffer may serve as datt of
// attention_backward).
void attention_forward(float* out, float* att, const float* qkv, const uint8_t* key_mask, int B,
                       int T, int C, int H, bool causal, const DropoutSpec& drop,
                       const AttentionCoords& coords, float* dropped, cublasHandle_t handle,
                       cudaStream_t stream);

// Accumulates dqkv [B, T, 3*C] (+=) from dout [B, T, C]. datt is scratch [B, H, T, T]; no
// other scratch is needed. The dropout mask is regenerated from (drop, coords), never stored.
void attention_backward(float* dqkv, float* datt, const float* dout, const float* qkv,
                        const float* att, const uint8_t* key_mask, int B, int T, int C, int H,
                        bool causal, const DropoutSpec& drop, const AttentionCoords& coords,
                        cublasHandle_t handle, cudaStream_t stream);

}  // namespace ph::cuda
