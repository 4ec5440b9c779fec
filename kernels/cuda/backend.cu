// The CUDA backend: device memory, and the ops of kernels/cuda on one non-blocking compute
// stream with one cuBLAS handle bound to it.
//
// cuBLAS math mode: CUBLAS_DEFAULT_MATH, set explicitly. Under it cublasSgemm computes with
// CUBLAS_COMPUTE_32F: fp32 inputs and at least fp32 internal precision. Inputs are rounded to
// TF32 only with CUBLAS_TF32_TENSOR_OP_MATH (or a *_FAST_TF32 compute type), and the BF16x9
// emulation of fp32 only with CUBLAS_FP32_EMULATED_BF16X9_MATH, neither of which is set here.
// CUBLAS_PEDANTIC_MATH would also give fp32 results but may give up the fastest fp32 kernels;
// it is meant for numerical studies and debugging.
//
// Uploads are staged through pinned memory of the backend (see upload()), so that the caller's
// host buffer may be reused as soon as upload returns.
//
// bf16 mode (GemmPrecision::Bf16): the linear layer converts its GEMM operands into two device
// buffers of bfloat16 bits owned by the backend (Bf16Buffers, kernels/cuda/gemm_plan.h) and
// multiplies them with cublasGemmEx into fp32 (kernels/cuda/matmul.h). The buffers are sized
// by reserve_linear for the largest layer (matmul_bf16_buffer_sizes; for a language model the
// LM head of N tokens, width C and vocabulary V: 2 (max(N, V) C + N V) bytes).
//
// Scratch (Backend's reserve_*): the dropped-out attention probabilities, the bf16 operand
// copies and the per-range results of sum_squares_ranges are allocated by the reserve_* calls
// a model makes when it is built, and only grow there. No op allocates: one that needs more
// than was reserved throws std::logic_error naming both sizes (cudaMalloc and cudaFree in the
// middle of a step would synchronise the device, and a late out-of-memory would surface
// mid-step instead of when the model is built).
#include "kernels/cuda/backend.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <string>

#include "kernels/cuda/activation.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/check.h"
#include "kernels/cuda/crossentropy.h"
#include "kernels/cuda/device.h"
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/layernorm.h"
#include "kernels/cuda/matmul.h"
#include "kernels/cuda/optimizer.h"
#include "kernels/cuda/residual.h"
#include "kernels/cuda/rows.h"

namespace ph::cuda {
namespace {

// Pinned staging of uploads: two slots, so that filling one overlaps the copy out of the other.
constexpr size_t kStagingBytes = size_t{4} << 20;  // per slot
constexpr int kStagingSlots = 2;

// The host results of sum_squares and all_finite: on the device (written by the kernels), then
// copied into a pinned twin on the host.
struct Results {
  double sum_squares;
  int all_finite;
};

class CudaBackendImpl final : public CudaBackend {
 public:
  CudaBackendImpl(int local_rank, GemmPrecision precision) : precision_(precision) {
    try {
      init(local_rank);
    } catch (...) {
      destroy();
      throw;
    }
  }
  ~CudaBackendImpl() override { destroy(); }

  cudaStream_t compute_stream() const override { return stream_; }
  int device_ordinal() const override { return ordinal_; }
  GemmPrecision gemm_precision() const override { return precision_; }
  std::string describe() const override {
    return "cuda:" + std::to_string(ordinal_) + " (" + name_ + ")";
  }
  std::string device_name() const override { return name_; }
  int64_t device_memory_used() const override {
    size_t free = 0, total = 0;
    if (cudaSetDevice(ordinal_) != cudaSuccess || cudaMemGetInfo(&free, &total) != cudaSuccess)
      return -1;  // an error of the device is reported by the next op that checks it
    return static_cast<int64_t>(total - free);
  }

  // --- memory ---

  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    void* p = nullptr;
    const cudaError_t status = cudaMalloc(&p, bytes);
    if (status != cudaSuccess) {
      const std::string call = "cudaMalloc(" + std::to_string(bytes) +
                               " bytes on cuda:" + std::to_string(ordinal_) + ")";
      check_cuda(status, call.c_str());  // throws "<call> failed: out of memory"
    }
    try {
      zero(p, bytes);  // ordered before every later use of p on the stream
    } catch (...) {
      cudaFree(p);
      throw;
    }
    return p;
  }

  // Waits for the stream first: queued work may still use p. Allocation happens at start-up
  // only, so the wait costs nothing in the training loop. Never throws: after a device error
  // (which every later call repeats) the buffers are still released while the exception that
  // reported it unwinds, and the job ends with that first message.
  void release(void* p) noexcept override {
    if (!p) return;
    cudaStreamSynchronize(stream_);
    cudaFree(p);
    cudaGetLastError();
  }

  void zero(void* dst, size_t bytes) override {
    if (bytes) check_cuda(cudaMemsetAsync(dst, 0, bytes, stream_), "cudaMemsetAsync");
  }

  // The ranges must not overlap unless they are the same (cudaMemcpy does not move like
  // memmove does).
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes == 0 || dst == src) return;
    const auto d = reinterpret_cast<uintptr_t>(dst), s = reinterpret_cast<uintptr_t>(src);
    if (d < s + bytes && s < d + bytes) {
      throw std::invalid_argument("copy: overlapping device ranges of " + std::to_string(bytes) +
                                  " bytes");
    }
    check_cuda(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_),
               "cudaMemcpyAsync (device to device)");
  }

  // The CUDA documentation ("API synchronization behavior") does not promise that
  // cudaMemcpyAsync from pageable memory has read the host buffer when it returns: it "might
  // be synchronous", and the driver "may" stage pageable memory into pinned memory first (older
  // releases documented the staging as done asynchronously by a worker thread). Only the
  // synchronous cudaMemcpy promises to return once the buffer has been staged, and it runs on
  // the legacy default stream, which is not ordered with this non-blocking stream. So upload
  // copies the host data into a pinned slot of the backend itself and queues the DMA from
  // there: when upload returns, the caller's buffer has been read and may be reused. A slot is
  // refilled only after the copy out of it has run (an event per slot).
  void upload(void* dst, const void* host_src, size_t bytes) override {
    auto* d = static_cast<char*>(dst);
    const auto* s = static_cast<const char*>(host_src);
    for (size_t done = 0; done < bytes;) {
      const size_t n = std::min(kStagingBytes, bytes - done);
      Staging& slot = staging_[next_slot_];
      next_slot_ = (next_slot_ + 1) % kStagingSlots;
      check_cuda(cudaEventSynchronize(slot.free), "cudaEventSynchronize");
      std::memcpy(slot.host, s + done, n);
      check_cuda(cudaMemcpyAsync(d + done, slot.host, n, cudaMemcpyHostToDevice, stream_),
                 "cudaMemcpyAsync (host to device)");
      check_cuda(cudaEventRecord(slot.free, stream_), "cudaEventRecord");
      done += n;
    }
  }

  void download(void* host_dst, const void* src, size_t bytes) override {
    if (bytes == 0) return;
    check_cuda(cudaMemcpyAsync(host_dst, src, bytes, cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpyAsync (device to host)");
    synchronize();
  }

  void synchronize() override {
    check_cuda(cudaStreamSynchronize(stream_), "cudaStreamSynchronize");
  }

  // --- scratch ---

  void reserve_attention(size_t probabilities) override {
    grow(attention_scratch_, probabilities * sizeof(float));
  }
  void reserve_linear(int N, int IC, int OC) override {
    if (precision_ != GemmPrecision::Bf16) return;
    const Bf16BufferSizes need = matmul_bf16_buffer_sizes(N, IC, OC);
    grow(bf16_a_, need.a * sizeof(uint16_t));
    grow(bf16_b_, need.b * sizeof(uint16_t));
  }
  void reserve_norm_ranges(size_t count) override { grow(range_results_, count * sizeof(double)); }

  // --- ops ---

  void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* pos,
                         int B, int T, int C, int vocab_start, int V_local, float scale) override {
    cuda::embedding_forward(out, tokens, wte, pos, B, T, C, vocab_start, V_local, scale, stream_);
  }
  void embedding_backward(float* dwte, float* dpos, const float* dout, const int32_t* tokens, int B,
                          int T, int C, int vocab_start, int V_local, float scale) override {
    cuda::embedding_backward(dwte, dpos, dout, tokens, B, T, C, vocab_start, V_local, scale,
                             stream_);
  }
  void sinusoidal_table(float* table, int T, int C) override {
    cuda::sinusoidal_table(table, T, C, stream_);
  }
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                         const float* b, int N, int C, float eps) override {
    cuda::layernorm_forward(out, mean, rstd, inp, w, b, N, C, eps, stream_);
  }
  void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                          const float* w, const float* mean, const float* rstd, int N,
                          int C) override {
    cuda::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, stream_);
  }
  void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N,
                      int IC, int OC) override {
    cuda::matmul_forward(out, inp, w, bias, N, IC, OC, cublas_, stream_, bf16_buffers(N, IC, OC));
  }
  void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                       const float* w, int N, int IC, int OC) override {
    cuda::matmul_backward(dinp, dw, dbias, dout, inp, w, N, IC, OC, cublas_, stream_,
                          bf16_buffers(N, IC, OC));
  }
  void attention_forward(float* out, float* att, const float* q, const float* kv,
                         const AttentionDims& dims, const DropoutSpec& drop,
                         const AttentionCoords& coords) override {
    float* dropped = nullptr;
    if (drop.p > 0.0f) {
      const size_t probabilities =
          static_cast<size_t>(std::max(dims.B, 0)) * static_cast<size_t>(std::max(dims.H, 0)) *
          static_cast<size_t>(std::max(dims.Tq, 0)) * static_cast<size_t>(std::max(dims.Tk, 0));
      const auto op = [&] {
        return "attention_forward (dropout, " + std::to_string(probabilities) + " probabilities)";
      };
      dropped = static_cast<float*>(
          reserved(attention_scratch_, probabilities * sizeof(float), op, "reserve_attention"));
    }
    cuda::attention_forward(out, att, q, kv, dims, drop, coords, dropped, cublas_, stream_);
  }
  void attention_backward(float* dq, float* dkv, float* datt, const float* dout, const float* q,
                          const float* kv, const float* att, const AttentionDims& dims,
                          const DropoutSpec& drop, const AttentionCoords& coords) override {
    cuda::attention_backward(dq, dkv, datt, dout, q, kv, att, dims, drop, coords, cublas_, stream_);
  }
  void gelu_forward(float* out, const float* inp, size_t n) override {
    cuda::gelu_forward(out, inp, n, stream_);
  }
  void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cuda::gelu_backward(dinp, inp, dout, n, stream_);
  }
  void gelu_erf_forward(float* out, const float* inp, size_t n) override {
    cuda::gelu_erf_forward(out, inp, n, stream_);
  }
  void gelu_erf_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cuda::gelu_erf_backward(dinp, inp, dout, n, stream_);
  }
  void tanh_forward(float* out, const float* inp, size_t n) override {
    cuda::tanh_forward(out, inp, n, stream_);
  }
  void tanh_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cuda::tanh_backward(dinp, inp, dout, n, stream_);
  }
  void relu_forward(float* out, const float* inp, size_t n) override {
    cuda::relu_forward(out, inp, n, stream_);
  }
  void relu_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cuda::relu_backward(dinp, inp, dout, n, stream_);
  }
  void residual_forward(float* out, const float* a, const float* b, size_t n) override {
    cuda::residual_forward(out, a, b, n, stream_);
  }
  void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                       const DropoutBlock& blk) override {
    cuda::dropout_forward(out, inp, rows, cols, d, blk, stream_);
  }
  void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                        const DropoutBlock& blk) override {
    cuda::dropout_backward(dinp, dout, rows, cols, d, blk, stream_);
  }
  void gather_rows(float* out, const float* inp, const int32_t* rows, int n, int C) override {
    cuda::gather_rows(out, inp, rows, n, C, stream_);
  }
  void scatter_add_rows(float* dinp, const float* dout, const int32_t* rows, int n,
                        int C) override {
    cuda::scatter_add_rows(dinp, dout, rows, n, C, stream_);
  }
  void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N,
                            int V, int Vp, int ignore_index, float smoothing) override {
    cuda::crossentropy_forward(losses, logits, targets, N, V, Vp, ignore_index, smoothing, stream_);
  }
  void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                          int V, int Vp, int ignore_index, float smoothing, float dloss) override {
    cuda::crossentropy_fused(logits_to_dlogits, losses, targets, N, V, Vp, ignore_index, smoothing,
                             dloss, stream_);
  }
  void vp_crossentropy_max(float* row_max, const float* logits, int N, int Vl, int v0,
                           int V) override {
    cuda::vp_crossentropy_max(row_max, logits, N, Vl, v0, V, stream_);
  }
  void vp_crossentropy_sums(float* sum_exp, float* target_logit, float* sum_logits,
                            const float* logits, const float* row_max, const int32_t* targets,
                            int N, int Vl, int v0, int V, int ignore_index) override {
    cuda::vp_crossentropy_sums(sum_exp, target_logit, sum_logits, logits, row_max, targets, N, Vl,
                               v0, V, ignore_index, stream_);
  }
  void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                              const float* row_max, const float* sum_exp, const float* target_logit,
                              const float* sum_logits, const int32_t* targets, int N, int Vl,
                              int v0, int V, int ignore_index, float smoothing,
                              float dloss) override {
    cuda::vp_crossentropy_finish(losses, dlogits, logits, row_max, sum_exp, target_logit,
                                 sum_logits, targets, N, Vl, v0, V, ignore_index, smoothing, dloss,
                                 stream_);
  }
  void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                    const AdamWParams& a) override {
    cuda::adamw_update(params, grads, m, v, n, a, stream_);
  }

  double sum_squares(const float* x, size_t n) override {
    if (sum_squares_scratch_size(n) > partials_count_) {
      throw std::logic_error("sum_squares: scratch of " + std::to_string(partials_count_) +
                             " partial sums is too small for n = " + std::to_string(n));
    }
    cuda::sum_squares(&device_results_->sum_squares, x, n, partials_, stream_);
    fetch(&host_results_->sum_squares, &device_results_->sum_squares, sizeof(double));
    return host_results_->sum_squares;
  }
  // One kernel pair per range into a device array, one copy back: no wait per range.
  void sum_squares_ranges(double* host_out, const float* x, const size_t* begin, const size_t* end,
                          size_t count) override {
    if (count == 0) return;
    const auto op = [&] { return "sum_squares_ranges of " + std::to_string(count) + " ranges"; };
    auto* results = static_cast<double*>(
        reserved(range_results_, count * sizeof(double), op, "reserve_norm_ranges"));
    for (size_t i = 0; i < count; ++i) {
      const size_t n = end[i] - begin[i];
      if (sum_squares_scratch_size(n) > partials_count_)
        throw std::logic_error("sum_squares_ranges: scratch too small for n = " +
                               std::to_string(n));
      // Each call finishes with partials_ before the next one starts (one stream).
      cuda::sum_squares(results + i, x + begin[i], n, partials_, stream_);
    }
    fetch(host_out, results, count * sizeof(double));
  }
  bool all_finite(const float* x, size_t n) override {
    cuda::all_finite(&device_results_->all_finite, x, n, stream_);
    fetch(&host_results_->all_finite, &device_results_->all_finite, sizeof(int));
    return host_results_->all_finite != 0;
  }

 private:
  struct Staging {
    void* host = nullptr;        // pinned, kStagingBytes
    cudaEvent_t free = nullptr;  // recorded after the last copy out of `host`
  };

  void init(int local_rank) {
    select_device(local_rank);
    check_cuda(cudaGetDevice(&ordinal_), "cudaGetDevice");
    cudaDeviceProp prop{};
    check_cuda(cudaGetDeviceProperties(&prop, ordinal_), "cudaGetDeviceProperties");
    name_ = prop.name;
    check_cuda(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
               "cudaStreamCreateWithFlags");
    check_cublas(cublasCreate(&cublas_), "cublasCreate");
    check_cublas(cublasSetStream(cublas_, stream_), "cublasSetStream");
    check_cublas(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    // The partial sums are bounded (the grid is capped), so the size for the largest n serves
    // every call.
    partials_count_ = sum_squares_scratch_size(std::numeric_limits<size_t>::max() / 2);
    partials_ = static_cast<double*>(allocate(partials_count_ * sizeof(double)));
    device_results_ = static_cast<Results*>(allocate(sizeof(Results)));
    void* pinned = nullptr;
    check_cuda(cudaMallocHost(&pinned, sizeof(Results)), "cudaMallocHost");
    host_results_ = static_cast<Results*>(pinned);
    for (Staging& slot : staging_) {
      check_cuda(cudaMallocHost(&slot.host, kStagingBytes), "cudaMallocHost");
      check_cuda(cudaEventCreateWithFlags(&slot.free, cudaEventDisableTiming),
                 "cudaEventCreateWithFlags");
    }
    synchronize();
  }

  // Copies device bytes to host memory and waits for them (and all work before them).
  void fetch(void* host, const void* device, size_t bytes) {
    check_cuda(cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, stream_),
               "cudaMemcpyAsync (device to host)");
    synchronize();
  }

  // Device scratch of the reserve_* calls: it grows there to the largest size asked (release()
  // waits for the stream: no queued work still uses the old buffer), and ops only use it.
  struct Scratch {
    void* p = nullptr;
    size_t bytes = 0;
  };
  void grow(Scratch& s, size_t bytes) {
    if (bytes > s.bytes) {
      release(s.p);
      s = Scratch{};
      s.p = allocate(bytes);
      s.bytes = bytes;
    }
  }
  // The scratch for an op that needs `bytes` of it; std::logic_error if the reservation is
  // smaller (the model's reserve_* calls did not cover this shape). `op` names the call.
  template <typename Name>
  static void* reserved(const Scratch& s, size_t bytes, const Name& op, const char* reserve) {
    if (bytes > s.bytes) {
      throw std::logic_error(std::string(op()) + " needs " + std::to_string(bytes) +
                             " bytes of scratch, but only " + std::to_string(s.bytes) +
                             " were reserved (Backend::" + reserve + " when the model was built)");
    }
    return s.p;
  }

  // The bf16 operand buffers of a linear layer [N, IC] -> [N, OC] in bf16 mode; null in fp32
  // mode.
  const Bf16Buffers* bf16_buffers(int N, int IC, int OC) {
    if (precision_ != GemmPrecision::Bf16) return nullptr;
    const Bf16BufferSizes need = matmul_bf16_buffer_sizes(N, IC, OC);
    const auto op = [&] {
      return "bf16 linear layer N=" + std::to_string(N) + " IC=" + std::to_string(IC) +
             " OC=" + std::to_string(OC);
    };
    bf16_buffers_.a =
        static_cast<uint16_t*>(reserved(bf16_a_, need.a * sizeof(uint16_t), op, "reserve_linear"));
    bf16_buffers_.b =
        static_cast<uint16_t*>(reserved(bf16_b_, need.b * sizeof(uint16_t), op, "reserve_linear"));
    return &bf16_buffers_;
  }

  // Frees whatever init() has created; never throws (errors are ignored: the process may be
  // unwinding from one).
  void destroy() noexcept {
    if (stream_) cudaStreamSynchronize(stream_);
    cudaFree(attention_scratch_.p);
    cudaFree(range_results_.p);
    cudaFree(bf16_a_.p);
    cudaFree(bf16_b_.p);
    cudaFree(partials_);
    cudaFree(device_results_);
    cudaFreeHost(host_results_);
    for (Staging& slot : staging_) {
      cudaFreeHost(slot.host);
      if (slot.free) cudaEventDestroy(slot.free);
    }
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
    cudaGetLastError();
  }

  GemmPrecision precision_;
  int ordinal_ = -1;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  double* partials_ = nullptr;  // sum_squares' partial sums, partials_count_ doubles
  size_t partials_count_ = 0;
  Results* device_results_ = nullptr;
  Results* host_results_ = nullptr;  // pinned
  std::array<Staging, kStagingSlots> staging_{};
  int next_slot_ = 0;
  Scratch attention_scratch_;   // dropped-out attention probabilities, [B, H, Tq, Tk] floats
  Scratch bf16_a_, bf16_b_;     // bf16 mode: the linear layer's operand copies
  Scratch range_results_;       // sum_squares_ranges: one double per range
  Bf16Buffers bf16_buffers_{};  // views of bf16_a_ and bf16_b_
};

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(int local_rank, GemmPrecision precision) {
  return std::make_unique<CudaBackendImpl>(local_rank, precision);
}

cudaStream_t compute_stream(const Backend& be) {
  const auto* cuda = dynamic_cast<const CudaBackend*>(&be);
  if (!cuda) {
    throw std::invalid_argument("compute_stream: " + be.describe() + " is not a CUDA backend");
  }
  return cuda->compute_stream();
}

}  // namespace ph::cuda
