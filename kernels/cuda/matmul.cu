// Linear layer: cuBLAS for the GEMM plans and launchers around kernels/cuda/matmul_kernels.cuh.
#include "kernels/cuda/matmul.h"

#include "kernels/cuda/check.h"
#include "kernels/cuda/matmul_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

namespace {

cublasOperation_t op(bool trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}

}  // namespace

void run_gemm(cublasHandle_t handle, const GemmPlan& plan, const float* A, const float* B,
              float* C) {
  const GemmCall& g = plan.call;
  for (int o = 0; o < plan.outer; ++o) {
    const float* a = A + plan.offsetA + o * plan.outer_strideA;
    const float* b = B + plan.offsetB + o * plan.outer_strideB;
    float* c = C + plan.offsetC + o * plan.outer_strideC;
    if (g.batch == 1) {
      check_cublas(cublasSgemm(handle, op(g.transa), op(g.transb), g.m, g.n, g.k, &g.alpha, a,
                               g.lda, b, g.ldb, &g.beta, c, g.ldc),
                   "cublasSgemm");
    } else {
      check_cublas(cublasSgemmStridedBatched(handle, op(g.transa), op(g.transb), g.m, g.n, g.k,
                                             &g.alpha, a, g.lda, g.strideA, b, g.ldb, g.strideB,
                                             &g.beta, c, g.ldc, g.strideC, g.batch),
                   "cublasSgemmStridedBatched");
    }
  }
}

void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int IC,
                    int OC, cublasHandle_t handle, cudaStream_t stream) {
  if (N == 0 || OC == 0) return;
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  impl::matmul_forward(CublasGemm{handle}, StreamLauncher{stream}, out, inp, w, bias, N, IC, OC);
}

void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, cublasHandle_t handle,
                     cudaStream_t stream) {
  if (N == 0 || OC == 0) return;
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  impl::matmul_backward(CublasGemm{handle}, StreamLauncher{stream}, dinp, dw, dbias, dout, inp, w,
                        N, IC, OC);
}

}  // namespace ph::cuda
