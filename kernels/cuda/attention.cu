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
bool prepare(int B, int T, int C, int H, cublasHandle_t handle, cudaStream_t stream) {
  if (B < 0 || T < 0 || H < 1 || C < H || C % H != 0) {
    throw std::invalid_argument("attention: bad shape B=" + std::to_string(B) +
                                " T=" + std::to_string(T) + " C=" + std::to_string(C) +
                                " H=" + std::to_string(H));
  }
  if (B == 0 || T == 0) return false;
  check_cublas(cublasSetStream(handle, stream), "cublasSetStream");
  return true;
}

AttentionRows rows_of(int B, int T, int H, bool causal, const uint8_t* key_mask,
                      const AttentionCoords& coords) {
  return attention_rows(B, T, H, causal, key_mask, static_cast<long long>(coords.sample0),
                        coords.head0, coords.H_total);
}

}  // namespace

void attention_forward(float* out, float* att, const float* qkv, const uint8_t* key_mask, int B,
                       int T, int C, int H, bool causal, const DropoutSpec& drop,
                       const AttentionCoords& coords, float* dropped, cublasHandle_t handle,
                       cudaStream_t stream) {
  if (drop.p > 0.0f && dropped == nullptr) {
    throw std::invalid_argument("attention_forward: dropout needs the dropped scratch buffer");
  }
  if (!prepare(B, T, C, H, handle, stream)) return;
  impl::attention_forward(CublasGemm{handle}, StreamLauncher{stream}, out, att, dropped, qkv, C,
                          rows_of(B, T, H, causal, key_mask, coords), drop);
}

void attention_backward(float* dqkv, float* datt, const float* dout, const float* qkv,
                        const float* att, const uint8_t* key_mask, int B, int T, int C, int H,
                        bool causal, const DropoutSpec& drop, const AttentionCoords& coords,
                        cublasHandle_t handle, cudaStream_t stream) {
  if (!prepare(B, T, C, H, handle, stream)) return;
  impl::attention_backward(CublasGemm{handle}, StreamLauncher{stream}, dqkv, datt, dout, qkv, att,
                           C, rows_of(B, T, H, causal, key_mask, coords), drop);
}

}  // namespace ph::cuda
