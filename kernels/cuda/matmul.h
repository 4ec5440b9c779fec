// Linear layer in PyTorch orientation through cuBLAS. Same contracts as kernels/cpu/matmul.h on
// device pointers; the work is queued on `stream` (the handle is bound to it).
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "kernels/cuda/gemm_plan.h"

namespace ph::cuda {

// out [N, OC] = inp [N, IC] @ w[OC, IC]^T + bias [OC] (bias may be null). Overwrites out.
void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int IC,
                    int OC, cublasHandle_t handle, cudaStream_t stream);

// Accumulates (+=): dinp [N, IC] += dout @ w; dw [OC, IC] += dout^T @ inp;
// dbias [OC] += column sums of dout (summed in a fixed order: deterministic). dinp and dbias
// may be null (not needed).
void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, cublasHandle_t handle,
                     cudaStream_t stream);

// Issues a plan of kernels/cuda/gemm_plan.h on the handle's stream: A, B, C are the buffers
// its comment names (the plan adds its offsets). Throws std::runtime_error if cuBLAS fails.
void run_gemm(cublasHandle_t handle, const GemmPlan& plan, const float* A, const float* B,
              float* C);

// run_gemm as the GEMM of the kernel drivers (impl::matmul_* and impl::attention_*).
struct CublasGemm {
  cublasHandle_t handle;
  void operator()(const GemmPlan& plan, const float* A, const float* B, float* C) const {
    run_gemm(handle, plan, A, B, C);
  }
};

}  // namespace ph::cuda
