// Attention: the sequence of kernels/cuda/attention_kernels.cuh (impl::attention_forward /
// backward) with cuBLAS for the products, on the caller's stream.
#include "kernels/cuda/attention.h"

#include <stdexcept>
#include <string>

#include "kernels/cuda/attention_kernels.cuh"
#include "kernels/cuda/check.h"
#include "kernels/cuda/gemm_plan.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

namespace {

// Checks the shape and binds the handle to the stream; false: nothing to do.
bool prepare(const AttentionDims& d, cublasHandle_t handle, cudaStream_t stream) {
  if (d.B < 0 || d.Tq < 0 || d.Tk < 0 || d.H < 1 || d.C < d.H || d.C % d.H != 0 || d.ldq < d.C ||
      d.ldkv < 2 * d.C) {
    throw std::invalid_argument(
        "attention: bad shape B=" + std::to_string(d.B) + " Tq=" + std::to_string(d.Tq) +
        " Tk=" + std::to_string(d.Tk) + " C=" + std::to_string(d.C) + " H=" + std::to_string(d.H) +
        " ldq=" + std::to_string(d.ldq) + " ldkv=" + std::to_string(d.ldkv));
  }
  if (d.B == 0 || d.Tq == 0) return false;
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  return true;
}

}  // namespace

void attention_forward(float* out, float* att, const float* q, const float* kv,
                       const AttentionDims& dims, const DropoutSpec& drop,
                       const AttentionCoords& coords, float* dropped, cublasHandle_t handle,
                       cudaStream_t stream) {
  if (!prepare(dims, handle, stream)) return;
  if (drop.p > 0.0f && dims.Tk > 0 && dropped == nullptr) {
    throw std::invalid_argument("attention_forward: dropout needs the dropped scratch buffer");
  }
  impl::attention_forward(CublasGemm{handle}, StreamLauncher{stream}, out, att, dropped, q, kv,
                          attention_rows(dims, coords), drop);
}

void attention_backward(float* dq, float* dkv, float* datt, const float* dout, const float* q,
                        const float* kv, const float* att, const AttentionDims& dims,
                        const DropoutSpec& drop, const AttentionCoords& coords,
                        cublasHandle_t handle, cudaStream_t stream) {
  if (!prepare(dims, handle, stream)) return;
  impl::attention_backward(CublasGemm{handle}, StreamLauncher{stream}, dq, dkv, datt, dout, q, kv,
                           att, attention_rows(dims, coords), drop);
}

}  // namespace ph::cuda
