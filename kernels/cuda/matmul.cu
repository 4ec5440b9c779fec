// Linear layer: the GEMMs of kernels/cuda/gemm_plan.h, and two small kernels for the bias.
#include "kernels/cuda/matmul.h"

#include <stdexcept>
#include <string>

#include "kernels/cuda/launch.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

namespace {

// bias add: a block adds the bias to rows blockIdx.x, blockIdx.x + gridDim.x, ...
constexpr LaunchShape kBiasAddShape{256, 1 << 16};
// dbias: a block sums kWarpSize columns, its warps taking rows w, w + warps, ...
constexpr int kBiasSumThreads = 1024;
constexpr int kBiasSumWarps = kBiasSumThreads / kWarpSize;

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(what) + " failed: " + cublasGetStatusName(status) + " (" +
                             cublasGetStatusString(status) + ")");
  }
}

cublasOperation_t op(bool trans) {
  return trans ? CUBLAS_OP_T : CUBLAS_OP_N;
}

// out [N, OC] += bias [OC] on every row.
__global__ void add_bias_kernel(float* out, const float* bias, int N, int OC) {
  for (int n = static_cast<int>(blockIdx.x); n < N; n += static_cast<int>(gridDim.x)) {
    float* row = out + static_cast<size_t>(n) * OC;
    for (int c = thread_in_block(); c < OC; c += static_cast<int>(blockDim.x)) row[c] += bias[c];
  }
}

// dbias [OC] += column sums of dout [N, OC]. Lane l of every warp reads column
// blockIdx.x * 32 + l (a warp reads 32 consecutive floats of a row); warp w sums rows
// w, w + kBiasSumWarps, ... in order, then warp 0 adds the warps' sums in order.
__global__ void bias_column_sum_kernel(float* dbias, const float* dout, int N, int OC) {
  __shared__ float partial[kBiasSumWarps][kWarpSize];
  const int col = static_cast<int>(blockIdx.x) * kWarpSize + lane_id();
  float acc = 0.0f;
  if (col < OC) {
    for (int n = warp_id(); n < N; n += kBiasSumWarps) {
      acc += dout[static_cast<size_t>(n) * OC + col];
    }
  }
  partial[warp_id()][lane_id()] = acc;
  __syncthreads();
  if (warp_id() == 0 && col < OC) {
    float sum = 0.0f;
    for (int w = 0; w < kBiasSumWarps; ++w) sum += partial[w][lane_id()];
    dbias[col] += sum;
  }
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
  run_gemm(handle, matmul_forward_plan(N, IC, OC), w, inp, out);
  if (bias) {
    const StreamLauncher launch{stream};
    launch(dim3(grid_blocks(static_cast<size_t>(N), 1, kBiasAddShape.max_blocks)),
           dim3(kBiasAddShape.threads), add_bias_kernel, out, bias, N, OC);
  }
}

void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, cublasHandle_t handle,
                     cudaStream_t stream) {
  if (N == 0 || OC == 0) return;
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  if (dinp) run_gemm(handle, matmul_dinp_plan(N, IC, OC), w, dout, dinp);
  run_gemm(handle, matmul_dw_plan(N, IC, OC), inp, dout, dw);
  if (dbias) {
    const StreamLauncher launch{stream};
    launch(dim3(static_cast<unsigned>((OC + kWarpSize - 1) / kWarpSize)), dim3(kBiasSumThreads),
           bias_column_sum_kernel, dbias, dout, N, OC);
  }
}

}  // namespace ph::cuda
