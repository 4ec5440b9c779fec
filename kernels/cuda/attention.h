// Multi-head scaled dot-product attention on the GPU, queries from one buffer and keys and
// values from another (kernels/common/attention_args.h): the products are the cuBLAS plans of
// kernels/cuda/gemm_plan.h, the masked softmax, its backward and dropout the row kernels of
// kernels/cuda/attention_kernels.cuh. Same contracts as kernels/cpu/attention.h on device
// pointers (same probabilities, same dropout masks; dims.key_len is device memory); the work
// is queued on `stream` (the handle is bound to it).
//
// One difference in what the inputs may hold: the products run over every key of a sample and
// multiply the keys a row does not see by exact zeros, so the k and v rows of padded keys must
// be finite numbers (any value the layers compute is; uninitialised memory may not be). With
// finite inputs padded keys get exactly zero probability and contribute exactly nothing, to
// the output and to every gradient, as on the CPU.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/common/attention_args.h"
#include "kernels/common/dropout_mask.h"

namespace ph::cuda {

// att [B, H, Tq, Tk] receives the probabilities before dropout (kept for backward), out
// [B*Tq, C] = dropout(att) @ v. dropped is scratch [B, H, Tq, Tk] for the probabilities after
// dropout, used only when drop.p > 0 (may be null otherwise); it is free again when the call
// returns (the same buffer may serve as datt of attention_backward). Throws
// std::invalid_argument on a bad shape (C not a multiple of H, ldq < C, ldkv < 2C).
void attention_forward(float* out, float* att, const float* q, const float* kv,
                       const AttentionDims& dims, const DropoutSpec& drop,
                       const AttentionCoords& coords, float* dropped, cublasHandle_t handle,
                       cudaStream_t stream);

// Accumulates dq (layout of q) and dkv (layout of kv) (+=) from dout [B*Tq, C]. datt is
// scratch [B, H, Tq, Tk]; no other scratch is needed. The dropout mask is regenerated from
// (drop, coords), never stored.
void attention_backward(float* dq, float* dkv, float* datt, const float* dout, const float* q,
                        const float* kv, const float* att, const AttentionDims& dims,
                        const DropoutSpec& drop, const AttentionCoords& coords,
                        cublasHandle_t handle, cudaStream_t stream);

}  // namespace ph::cuda
