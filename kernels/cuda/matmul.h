// Linear layer in PyTorch orientation through cuBLAS. Same contracts as kernels/cpu/matmul.h on
// device pointers; the work is queued on `stream` (the handle is bound to it).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/cuda/gemm_plan.h"

namespace ph::cuda {

// out [N, OC] = inp [N, IC] @ w[OC, IC]^T + bias [OC] (bias may be null). Overwrites out.
// bf16 != null: bf16 mode (kernels/backend.h, GemmPrecision::Bf16): inp and w are converted to
// bfloat16 into bf16->b / bf16->a, which hold at least matmul_bf16_buffer_sizes(N, IC, OC)
// elements (kernels/cuda/gemm_plan.h); out and bias stay fp32.
void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int IC,
                    int OC, cublasHandle_t handle, cudaStream_t stream,
                    const Bf16Buffers* bf16 = nullptr);

// Accumulates (+=): dinp [N, IC] += dout @ w; dw [OC, IC] += dout^T @ inp;
// dbias [OC] += column sums of dout (summed in a fixed order: deterministic). dinp and dbias
// may be null (not needed). bf16 != null: the products read bfloat16 copies of dout, w and inp
// (buffers as for matmul_forward); dbias sums the fp32 dout.
void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, cublasHandle_t handle,
                     cudaStream_t stream, const Bf16Buffers* bf16 = nullptr);

// Issues a plan of kernels/cuda/gemm_plan.h on the handle's stream: A, B, C are the buffers
// its comment names (the plan adds its offsets). fp32 operands: cublasSgemm(StridedBatched);
// bf16 operands (bits, as kernels/common/bf16.h makes them): cublasGemm(StridedBatched)Ex with
// CUDA_R_16BF A and B, CUDA_R_32F C and CUBLAS_COMPUTE_32F (products of bf16 values are exact in
// fp32 and summed in fp32). Throws std::runtime_error if cuBLAS fails.
void run_gemm(cublasHandle_t handle, const GemmPlan& plan, const float* A, const float* B,
              float* C);
void run_gemm(cublasHandle_t handle, const GemmPlan& plan, const uint16_t* A, const uint16_t* B,
              float* C);

// run_gemm as the GEMM of the kernel drivers (impl::matmul_* and impl::attention_*).
struct CublasGemm {
  cublasHandle_t handle;
  template <typename T>
  void operator()(const GemmPlan& plan, const T* A, const T* B, float* C) const {
    run_gemm(handle, plan, A, B, C);
  }
};

}  // namespace ph::cuda
