// The compute backend seen by the model and the trainer: memory where the kernels can reach it
// and every op of kernels/cpu with the same signature and semantics (see the kernels/cpu
// headers for each op's contract). Two implementations: the CPU backend (kernels/cpu; always
// built; the reference) and the CUDA backend (kernels/cuda; built when nvcc is found).
//
// Pointers given to ops and to zero/copy are "device" pointers: memory from allocate(). On the
// CPU backend that is ordinary host memory; on the CUDA backend it is cudaMalloc memory that
// the host must never touch directly. Code above this interface therefore moves data only
// through upload/download (tests run the model and trainer on a backend whose device memory
// is inaccessible from the host outside ops, to prove it).
//
// Ordering: ops, zero, copy and upload run in issue order on the backend's compute stream;
// download and the ops that return a value to the host (sum_squares, all_finite) wait for all
// work issued before them. synchronize() waits for everything.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>

#include "kernels/common/adamw.h"
#include "kernels/common/attention_args.h"
#include "kernels/common/dropout_block.h"
#include "kernels/common/dropout_mask.h"

namespace ph {

enum class Device { Cpu, Cuda };

// The arithmetic of the linear layer's GEMMs (matmul_forward and matmul_backward: out = inp w^T,
// dinp += dout w, dw += dout^T inp).
// - Fp32: fp32 operands, fp32 accumulation.
// - Bf16: the two operands of each GEMM are rounded to bfloat16 (round to nearest even,
//   kernels/common/bf16.h), their products (exact in fp32) are accumulated in fp32. Outputs,
//   bias, bias gradients and the weights, gradients and everything the callers keep stay fp32
//   (mixed precision with fp32 master weights). Both backends round the same operands the same
//   way, so they differ only in the order of the fp32 sums.
//   In this version attention's GEMMs, LayerNorm, softmax and the loss stay fp32.
enum class GemmPrecision { Fp32, Bf16 };

class Backend {
 public:
  Backend() = default;
  Backend(const Backend&) = delete;
  Backend& operator=(const Backend&) = delete;
  virtual ~Backend() = default;

  virtual Device device() const = 0;
  // "cpu" or "cuda:<ordinal> (<device name>)", for logs.
  virtual std::string describe() const = 0;
  // The precision of the linear layer's GEMMs, fixed when the backend is made. Fp32 unless a
  // backend says otherwise.
  virtual GemmPrecision gemm_precision() const { return GemmPrecision::Fp32; }
  // The device's model name as its runtime reports it ("NVIDIA H100 80GB HBM3"); "cpu" on the
  // CPU backend. Chooses the peak FLOP/s of MFU (trainer/device_peak.h).
  virtual std::string device_name() const { return "cpu"; }
  // Bytes of the device's memory in use (its total less what the runtime reports free, as
  // nvidia-smi counts it: other processes' too), or -1 where the backend computes in host
  // memory (the CPU).
  virtual int64_t device_memory_used() const { return -1; }

  // --- memory ---
  // Zero-filled, aligned to at least 256 bytes; bytes == 0 gives nullptr. Throws
  // std::bad_alloc (CPU) or std::runtime_error naming the size (CUDA) when out of memory.
  virtual void* allocate(size_t bytes) = 0;
  // Never throws (it runs in destructors, also while an error unwinds the stack); errors of the
  // device at this point are left for the call that reported the first one.
  virtual void release(void* p) noexcept = 0;
  virtual void zero(void* dst, size_t bytes) = 0;
  // device → device; the ranges must be equal or disjoint (CUDA copies do not move like memmove)
  virtual void copy(void* dst, const void* src, size_t bytes) = 0;
  virtual void upload(void* dst, const void* host_src, size_t bytes) = 0;  // host → device
  virtual void download(void* host_dst, const void* src, size_t bytes) = 0;
  virtual void synchronize() = 0;

  // --- scratch ---
  // Some ops need scratch of the backend (the CUDA backend: dropped-out attention
  // probabilities, bf16 operand copies, per-range norm results). A model reserves it for its
  // largest shapes when it is built, before any step: the reservation only grows, and an op
  // whose shape exceeds it throws std::logic_error instead of allocating in the middle of a
  // step. The CPU backend holds its bf16 operand copies the same way.
  // The largest attention call: B * H * Tq * Tk probabilities.
  virtual void reserve_attention(size_t probabilities) { (void)probabilities; }
  // The largest linear layer: N rows, IC inputs, OC outputs (forward and backward).
  virtual void reserve_linear(int N, int IC, int OC) {
    (void)N;
    (void)IC;
    (void)OC;
  }
  // The most ranges of one sum_squares_ranges call.
  virtual void reserve_norm_ranges(size_t count) { (void)count; }

  // --- weights that stay fixed (inference) ---
  // While weights stay fixed, a backend may keep copies of them in the layout its forward GEMM
  // reads fastest. An incremental decoder owns such a store (make_weight_store(); null where the
  // backend keeps none: this default, the CUDA backend, bf16 GEMMs) and hands it to the backend
  // around its own work (UseWeightStore below); meanwhile matmul_forward may read the store's
  // copy of a weight, made at its first use there. A weight must not change while a store holds
  // a copy of it: the owner makes a new store (a new decoder) after training steps.
  // `decoding_step`: the work in the scope is one decoding step, a few rows per op, so the
  // backend may run its ops other than the products on the calling thread alone (the CPU
  // backend does, but for attention and the row gathers, which it splits over the products'
  // spinning team: waking a sleeping OpenMP thread costs more than such an op).
  class WeightStore {
   public:
    virtual ~WeightStore() = default;
  };
  virtual std::unique_ptr<WeightStore> make_weight_store() { return nullptr; }
  // The store matmul_forward may read from now on (null: none), made by this backend.
  virtual void use_weight_store(WeightStore* store, bool decoding_step) {
    (void)store;
    (void)decoding_step;
  }

  // --- ops (kernels/cpu/<family>.h document each) ---
  virtual void embedding_forward(float* out, const int32_t* tokens, const float* wte,
                                 const float* pos, int B, int T, int C, int vocab_start,
                                 int V_local, float scale) = 0;
  virtual void embedding_backward(float* dwte, float* dpos, const float* dout,
                                  const int32_t* tokens, int B, int T, int C, int vocab_start,
                                  int V_local, float scale) = 0;
  virtual void sinusoidal_table(float* table, int T, int C) = 0;

  virtual void layernorm_forward(float* out, float* mean, float* rstd, const float* inp,
                                 const float* w, const float* b, int N, int C, float eps) = 0;
  virtual void layernorm_backward(float* dinp, float* dw, float* db, const float* dout,
                                  const float* inp, const float* w, const float* mean,
                                  const float* rstd, int N, int C) = 0;

  // layernorm_backward that overwrites dinp instead of adding to it (bit for bit zeroing it
  // first, which is what this default does).
  virtual void layernorm_backward_into(float* dinp, float* dw, float* db, const float* dout,
                                       const float* inp, const float* w, const float* mean,
                                       const float* rstd, int N, int C) {
    zero(dinp, static_cast<size_t>(N) * static_cast<size_t>(C) * sizeof(float));
    layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
  }

  virtual void matmul_forward(float* out, const float* inp, const float* w, const float* bias,
                              int N, int IC, int OC) = 0;
  virtual void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout,
                               const float* inp, const float* w, int N, int IC, int OC) = 0;
  // matmul_backward that overwrites dinp instead of adding to it (bit for bit zeroing it first,
  // which is what this default does); dw and dbias accumulate.
  virtual void matmul_backward_into(float* dinp, float* dw, float* dbias, const float* dout,
                                    const float* inp, const float* w, int N, int IC, int OC) {
    if (dinp) zero(dinp, static_cast<size_t>(N) * static_cast<size_t>(IC) * sizeof(float));
    matmul_backward(dinp, dw, dbias, dout, inp, w, N, IC, OC);
  }

  virtual void attention_forward(float* out, float* att, const float* q, const float* kv,
                                 const AttentionDims& dims, const DropoutSpec& drop,
                                 const AttentionCoords& coords) = 0;
  virtual void attention_backward(float* dq, float* dkv, float* datt, const float* dout,
                                  const float* q, const float* kv, const float* att,
                                  const AttentionDims& dims, const DropoutSpec& drop,
                                  const AttentionCoords& coords) = 0;

  // Cross-attention folded into a short memory, for incremental decoding (FoldedCrossDims in
  // kernels/common/attention_args.h; kernels/cpu/attention.h documents the ops). Only a backend
  // that says so has them (the CPU backend with fp32 GEMMs); the others throw std::logic_error,
  // and decoders use attention_forward between the projections instead.
  virtual bool folds_cross_attention() const { return false; }
  // Floats of the folded memory of dims.B sources.
  virtual size_t folded_cross_floats(const FoldedCrossDims& dims) const {
    (void)dims;
    throw std::logic_error(describe() + " backend: no folded cross-attention");
  }
  virtual void fold_cross_memory(float* folded, const float* kv, const float* wq, const float* bq,
                                 const float* wo, const FoldedCrossDims& dims) {
    (void)folded, (void)kv, (void)wq, (void)bq, (void)wo, (void)dims;
    throw std::logic_error(describe() + " backend: no folded cross-attention");
  }
  virtual void folded_cross_attention(float* y, const float* x, const float* folded,
                                      const float* bias, const FoldedCrossDims& dims) {
    (void)y, (void)x, (void)folded, (void)bias, (void)dims;
    throw std::logic_error(describe() + " backend: no folded cross-attention");
  }

  virtual void gelu_forward(float* out, const float* inp, size_t n) = 0;
  virtual void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) = 0;
  virtual void gelu_erf_forward(float* out, const float* inp, size_t n) = 0;
  virtual void gelu_erf_backward(float* dinp, const float* inp, const float* dout, size_t n) = 0;
  virtual void tanh_forward(float* out, const float* inp, size_t n) = 0;
  virtual void tanh_backward(float* dinp, const float* inp, const float* dout, size_t n) = 0;
  virtual void relu_forward(float* out, const float* inp, size_t n) = 0;
  virtual void relu_backward(float* dinp, const float* inp, const float* dout, size_t n) = 0;

  virtual void residual_forward(float* out, const float* a, const float* b, size_t n) = 0;

  virtual void dropout_forward(float* out, const float* inp, int rows, int cols,
                               const DropoutSpec& d, const DropoutBlock& blk) = 0;
  virtual void dropout_backward(float* dinp, const float* dout, int rows, int cols,
                                const DropoutSpec& d, const DropoutBlock& blk) = 0;

  // out = a + dropout(b) over a [rows, cols] block: dropout_forward of b, then residual_forward,
  // which this default does (b is overwritten); a backend may fuse them into one pass with the
  // same roundings (the CPU's, which leaves b alone). out may alias a.
  virtual void dropout_residual_forward(float* out, const float* a, float* b, int rows, int cols,
                                        const DropoutSpec& d, const DropoutBlock& blk) {
    dropout_forward(b, b, rows, cols, d, blk);
    residual_forward(out, a, b, static_cast<size_t>(rows) * static_cast<size_t>(cols));
  }

  virtual void gather_rows(float* out, const float* inp, const int32_t* rows, int n, int C) = 0;
  virtual void scatter_add_rows(float* dinp, const float* dout, const int32_t* rows, int n,
                                int C) = 0;

  virtual void crossentropy_forward(float* losses, const float* logits, const int32_t* targets,
                                    int N, int V, int Vp, int ignore_index, float smoothing) = 0;
  virtual void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets,
                                  int N, int V, int Vp, int ignore_index, float smoothing,
                                  float dloss) = 0;
  virtual void vp_crossentropy_max(float* row_max, const float* logits, int N, int Vl, int v0,
                                   int V) = 0;
  virtual void vp_crossentropy_sums(float* sum_exp, float* target_logit, float* sum_logits,
                                    const float* logits, const float* row_max,
                                    const int32_t* targets, int N, int Vl, int v0, int V,
                                    int ignore_index) = 0;
  virtual void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                                      const float* row_max, const float* sum_exp,
                                      const float* target_logit, const float* sum_logits,
                                      const int32_t* targets, int N, int Vl, int v0, int V,
                                      int ignore_index, float smoothing, float dloss) = 0;

  virtual void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                            const AdamWParams& a) = 0;
  // adamw_update on elements [r.begin, r.end) of all four buffers for each range r, with
  // a.weight_decay replaced by r.weight_decay: every parameter tensor in one call. Each element
  // is updated exactly as adamw_update updates it. This default calls adamw_update per range.
  virtual void adamw_update_ranges(float* params, const float* grads, float* m, float* v,
                                   const AdamWRange* ranges, size_t count, const AdamWParams& a) {
    AdamWParams ra = a;
    for (size_t i = 0; i < count; ++i) {
      const size_t b = ranges[i].begin;
      ra.weight_decay = ranges[i].weight_decay;
      adamw_update(params + b, grads + b, m + b, v + b, ranges[i].end - b, ra);
    }
  }
  // Host results: these wait for the work issued before them.
  virtual double sum_squares(const float* x, size_t n) = 0;
  virtual bool all_finite(const float* x, size_t n) = 0;
  // host_out[i] = sum_squares(x + begin[i], end[i] - begin[i]) for i < count, each computed
  // exactly as sum_squares computes it, with one wait for all of them (the gradient norm over
  // every parameter tensor). This default calls sum_squares per range.
  virtual void sum_squares_ranges(double* host_out, const float* x, const size_t* begin,
                                  const size_t* end, size_t count) {
    for (size_t i = 0; i < count; ++i) host_out[i] = sum_squares(x + begin[i], end[i] - begin[i]);
  }
};

// Backend::use_weight_store(store, decoding_step) for a scope; the backend reads no store after
// it.
class UseWeightStore {
 public:
  UseWeightStore(Backend& be, Backend::WeightStore* store, bool decoding_step = false) : be_(be) {
    be_.use_weight_store(store, decoding_step);
  }
  ~UseWeightStore() { be_.use_weight_store(nullptr, false); }
  UseWeightStore(const UseWeightStore&) = delete;
  UseWeightStore& operator=(const UseWeightStore&) = delete;

 private:
  Backend& be_;
};

// The CPU backend (kernels/cpu), its linear layer computing in precision p.
std::unique_ptr<Backend> make_cpu_backend(GemmPrecision p = GemmPrecision::Fp32);

// A typed device allocation owned by a backend, sized once; move-only.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(Backend& be, size_t n)
      : be_(&be), data_(static_cast<T*>(be.allocate(n * sizeof(T)))), size_(n) {}
  ~DeviceBuffer() { reset(); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : be_(o.be_), data_(o.data_), size_(o.size_) {
    o.be_ = nullptr;
    o.data_ = nullptr;
    o.size_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      be_ = o.be_;
      data_ = o.data_;
      size_ = o.size_;
      o.be_ = nullptr;
      o.data_ = nullptr;
      o.size_ = 0;
    }
    return *this;
  }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t bytes() const { return size_ * sizeof(T); }
  void zero() {
    if (data_) be_->zero(data_, bytes());
  }

 private:
  void reset() {
    if (data_) be_->release(data_);
    be_ = nullptr;
    data_ = nullptr;
    size_ = 0;
  }

  Backend* be_ = nullptr;
  T* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ph
