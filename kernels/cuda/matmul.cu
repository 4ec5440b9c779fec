// Linear layer: cuBLAS for the GEMM plans and launchers around kernels/cuda/matmul_kernels.cuh.
#include "kernels/cuda/matmul.h"

#include <library_types.h>

#include "kernels/cuda/check.h"
#include "kernels/cuda/matmul_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

namespace {

cublasOperation_t op(bool trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}

// One GemmCall on fp32 operands.
void issue(cublasHandle_t handle, const GemmCall& g, const float* a, const float* b, float* c) {
  if (g.batch == 1) {
    check_cublas(cublasSgemm(handle, op(g.transa), op(g.transb), g.m, g.n, g.k, &g.alpha, a, g.lda,
                             b, g.ldb, &g.beta, c, g.ldc),
                 "cublasSgemm");
  } else {
    check_cublas(cublasSgemmStridedBatched(handle, op(g.transa), op(g.transb), g.m, g.n, g.k,
                                           &g.alpha, a, g.lda, g.strideA, b, g.ldb, g.strideB,
                                           &g.beta, c, g.ldc, g.strideC, g.batch),
                 "cublasSgemmStridedBatched");
  }
}

// One GemmCall on bf16 operands, fp32 output and accumulation (alpha and beta are floats, as
// CUBLAS_COMPUTE_32F requires).
void issue(cublasHandle_t handle, const GemmCall& g, const uint16_t* a, const uint16_t* b,
           float* c) {
  if (g.batch == 1) {
    check_cublas(cublasGemmEx(handle, op(g.transa), op(g.transb), g.m, g.n, g.k, &g.alpha, a,
                              CUDA_R_16BF, g.lda, b, CUDA_R_16BF, g.ldb, &g.beta, c, CUDA_R_32F,
                              g.ldc, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx (bf16)");
  } else {
    check_cublas(cublasGemmStridedBatchedEx(
                     handle, op(g.transa), op(g.transb), g.m, g.n, g.k, &g.alpha, a, CUDA_R_16BF,
                     g.lda, g.strideA, b, CUDA_R_16BF, g.ldb, g.strideB, &g.beta, c, CUDA_R_32F,
                     g.ldc, g.strideC, g.batch, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmStridedBatchedEx (bf16)");
  }
}

template <typename T>
void run_plan(cublasHandle_t handle, const GemmPlan& plan, const T* A, const T* B, float* C) {
  for (int o = 0; o < plan.outer; ++o) {
    issue(handle, plan.call, A + plan.offsetA + o * plan.outer_strideA,
          B + plan.offsetB + o * plan.outer_strideB, C + plan.offsetC + o * plan.outer_strideC);
  }
}

}  // namespace

void run_gemm(cublasHandle_t handle, const GemmPlan& plan, const float* A, const float* B,
              float* C) {
  run_plan(handle, plan, A, B, C);
}

void run_gemm(cublasHandle_t handle, const GemmPlan& plan, const uint16_t* A, const uint16_t* B,
              float* C) {
  run_plan(handle, plan, A, B, C);
}

void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int IC,
                    int OC, cublasHandle_t handle, cudaStream_t stream, const Bf16Buffers* bf16) {
  if (N == 0 || OC == 0) return;
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  const StreamLauncher launch{stream};
  if (bf16) {
    impl::matmul_forward(CublasGemm{handle}, launch, out, inp, w, bias, N, IC, OC, kBiasAddShape,
                         impl::OperandsToBf16<StreamLauncher>{launch, *bf16});
  } else {
    impl::matmul_forward(CublasGemm{handle}, launch, out, inp, w, bias, N, IC, OC);
  }
}

void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, cublasHandle_t handle,
                     cudaStream_t stream, const Bf16Buffers* bf16) {
  if (N == 0 || OC == 0) return;
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  const StreamLauncher launch{stream};
  if (bf16) {
    impl::matmul_backward(CublasGemm{handle}, launch, dinp, dw, dbias, dout, inp, w, N, IC, OC,
                          kBiasSumShape, impl::OperandsToBf16<StreamLauncher>{launch, *bf16});
  } else {
    impl::matmul_backward(CublasGemm{handle}, launch, dinp, dw, dbias, dout, inp, w, N, IC, OC);
  }
}

}  // namespace ph::cuda
