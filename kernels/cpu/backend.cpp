// The CPU backend: host memory and the kernels/cpu ops, in issue order on the calling thread.
// In bf16 mode the linear layer rounds its operands into host scratch the backend owns
// (cpu::Bf16Operands, sized by reserve_linear when a model is built).
//
// Large buffers (the arenas) are anonymous mappings: zero-filled by the kernel page by page as
// they are first touched, so a buffer sized for the largest case (a training-sized activation
// arena that translate or sample uses a corner of) costs memory and start-up time only for what
// runs touch, and the pages of a training step are faulted in once, by the first step.
#include <omp.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <unordered_map>

#include "kernels/backend.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/attention.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/packed_matmul.h"
#include "kernels/cpu/residual.h"
#include "kernels/cpu/rows.h"
#include "kernels/cpu/spin_team.h"

namespace ph {
namespace {

// Weights packed once for matmul_forward_packed while they stay fixed (Backend::WeightStore).
class CpuWeightStore final : public Backend::WeightStore {
 public:
  cpu::PackedWeightCache cache;
};

// Outside a decoding step, products of at most this many rows read a store's packed weights (an
// encoder over a batch of short sources); larger ones stay with sgemm, whose blocking suits
// them better.
constexpr int kPackedMaxRows = 512;

class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(GemmPrecision p) : precision_(p) {}

  Device device() const override { return Device::Cpu; }
  std::string describe() const override { return "cpu"; }
  GemmPrecision gemm_precision() const override { return precision_; }

  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    if (bytes >= kMapBytes) {
      void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (p == MAP_FAILED) throw std::bad_alloc();
      const std::lock_guard<std::mutex> lock(mapped_mutex_);
      mapped_[p] = bytes;
      return p;  // page-aligned, zero-filled on first touch
    }
    const size_t rounded = (bytes + 255) / 256 * 256;
    void* p = std::aligned_alloc(256, rounded);
    if (!p) throw std::bad_alloc();
    std::memset(p, 0, rounded);
    return p;
  }
  void release(void* p) noexcept override {
    if (p == nullptr) return;
    {
      const std::lock_guard<std::mutex> lock(mapped_mutex_);
      const auto it = mapped_.find(p);
      if (it != mapped_.end()) {
        munmap(p, it->second);
        mapped_.erase(it);
        return;
      }
    }
    std::free(p);
  }
  void zero(void* dst, size_t bytes) override {
    if (bytes) std::memset(dst, 0, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    if (bytes && dst != src) std::memmove(dst, src, bytes);
  }
  void upload(void* dst, const void* host_src, size_t bytes) override {
    copy(dst, host_src, bytes);
  }
  void download(void* host_dst, const void* src, size_t bytes) override {
    copy(host_dst, src, bytes);
  }
  void synchronize() override {}

  void reserve_linear(int N, int IC, int OC) override {
    if (precision_ == GemmPrecision::Bf16) bf16_operands_.reserve(N, IC, OC);
  }

  void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* pos,
                         int B, int T, int C, int vocab_start, int V_local, float scale) override {
    cpu::embedding_forward(out, tokens, wte, pos, B, T, C, vocab_start, V_local, scale);
  }
  void embedding_backward(float* dwte, float* dpos, const float* dout, const int32_t* tokens, int B,
                          int T, int C, int vocab_start, int V_local, float scale) override {
    cpu::embedding_backward(dwte, dpos, dout, tokens, B, T, C, vocab_start, V_local, scale);
  }
  void sinusoidal_table(float* table, int T, int C) override { cpu::sinusoidal_table(table, T, C); }
  void layernorm_forward(float* out, float* mean, float* rstd, const float* inp, const float* w,
                         const float* b, int N, int C, float eps) override {
    cpu::layernorm_forward(out, mean, rstd, inp, w, b, N, C, eps);
  }
  void layernorm_backward(float* dinp, float* dw, float* db, const float* dout, const float* inp,
                          const float* w, const float* mean, const float* rstd, int N,
                          int C) override {
    cpu::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C);
  }
  void layernorm_backward_into(float* dinp, float* dw, float* db, const float* dout,
                               const float* inp, const float* w, const float* mean,
                               const float* rstd, int N, int C) override {
    cpu::layernorm_backward(dinp, dw, db, dout, inp, w, mean, rstd, N, C, false);
  }
  std::unique_ptr<WeightStore> make_weight_store() override {
    if (precision_ != GemmPrecision::Fp32) return nullptr;
    return std::make_unique<CpuWeightStore>();
  }
  // In a decoding step OpenMP runs on the calling thread alone (the previous thread count is
  // kept in step_threads_ and restored when the scope ends), and every product takes the
  // packed path, on that many threads of its own team, which attention and the row gathers
  // share (step_parts).
  void use_weight_store(WeightStore* store, bool decoding_step) override {
    if (step_threads_ > 0) omp_set_num_threads(step_threads_);
    step_threads_ = 0;
    store_ = store ? &dynamic_cast<CpuWeightStore&>(*store) : nullptr;
    if (store_ && decoding_step) {
      step_threads_ = omp_get_max_threads();
      omp_set_num_threads(1);
    }
  }
  // In a decoding step on more than one thread: fn(first, last) for parts of [0, n) of at least
  // min_part items, two per thread, on the products' team (spin_team.h), and true; otherwise
  // nothing and false (the caller runs the op as usual). A template, so that outside a step
  // (every training op) it costs a comparison, not a std::function.
  template <class Fn>
  bool step_parts(int n, int min_part, const Fn& fn) {
    const int parts = std::min(2 * step_threads_, n / min_part);
    if (parts < 2) return false;
    cpu::spin_team_run(parts, step_threads_ - 1, [&](int p) {
      fn(static_cast<int>(static_cast<int64_t>(n) * p / parts),
         static_cast<int>(static_cast<int64_t>(n) * (p + 1) / parts));
    });
    return true;
  }
  void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N,
                      int IC, int OC) override {
    if (store_ && (step_threads_ > 0 || N <= kPackedMaxRows)) {
      const int threads = step_threads_ > 0 ? step_threads_ : omp_get_max_threads();
      cpu::matmul_forward_packed(out, inp, store_->cache.get(w, IC, OC), bias, N, IC, OC, threads);
      return;
    }
    cpu::matmul_forward(out, inp, w, bias, N, IC, OC, bf16());
  }
  void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                       const float* w, int N, int IC, int OC) override {
    cpu::matmul_backward(dinp, dw, dbias, dout, inp, w, N, IC, OC, bf16());
  }
  void matmul_backward_into(float* dinp, float* dw, float* dbias, const float* dout,
                            const float* inp, const float* w, int N, int IC, int OC) override {
    cpu::matmul_backward(dinp, dw, dbias, dout, inp, w, N, IC, OC, bf16(), false);
  }
  void attention_forward(float* out, float* att, const float* q, const float* kv,
                         const AttentionDims& dims, const DropoutSpec& drop,
                         const AttentionCoords& coords) override {
    // In a decoding step, the samples in parts on the products' team: each (sample, head) is
    // computed alone, so the result is the same for any split.
    const bool split = step_parts(dims.B, 1, [&](int b0, int b1) {
      AttentionDims d = dims;
      d.B = b1 - b0;
      const size_t b = static_cast<size_t>(b0);
      if (d.key_len) d.key_len += b;
      if (d.q_len) d.q_len += b;
      if (d.q_rows) d.q_rows += b * static_cast<size_t>(d.Tq);
      AttentionCoords c = coords;
      c.sample0 += b0;
      const size_t q_rows = b * static_cast<size_t>(d.Tq), k_rows = b * static_cast<size_t>(d.Tk);
      cpu::attention_forward(out + q_rows * static_cast<size_t>(d.C),
                             att + q_rows * static_cast<size_t>(d.H) * static_cast<size_t>(d.Tk),
                             q + q_rows * static_cast<size_t>(d.ldq),
                             kv + k_rows * static_cast<size_t>(d.ldkv), d, drop, c);
    });
    if (!split) cpu::attention_forward(out, att, q, kv, dims, drop, coords);
  }
  void attention_backward(float* dq, float* dkv, float* datt, const float* dout, const float* q,
                          const float* kv, const float* att, const AttentionDims& dims,
                          const DropoutSpec& drop, const AttentionCoords& coords) override {
    cpu::attention_backward(dq, dkv, datt, dout, q, kv, att, dims, drop, coords);
  }
  bool folds_cross_attention() const override { return precision_ == GemmPrecision::Fp32; }
  size_t folded_cross_floats(const FoldedCrossDims& dims) const override {
    require_fold();
    return cpu::folded_cross_floats(dims);
  }
  void fold_cross_memory(float* folded, const float* kv, const float* wq, const float* bq,
                         const float* wo, const FoldedCrossDims& dims) override {
    require_fold();
    cpu::fold_cross_memory(folded, kv, wq, bq, wo, dims);
  }
  void folded_cross_attention(float* y, const float* x, const float* folded, const float* bias,
                              const FoldedCrossDims& dims) override {
    require_fold();
    // In a decoding step, the sources in parts on the products' team, as attention_forward's.
    const bool split = step_parts(dims.B, 1, [&](int b0, int b1) {
      cpu::folded_cross_attention(y, x, folded, bias, dims, b0, b1);
    });
    if (!split) cpu::folded_cross_attention(y, x, folded, bias, dims, 0, dims.B);
  }
  void gelu_forward(float* out, const float* inp, size_t n) override {
    cpu::gelu_forward(out, inp, n);
  }
  void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cpu::gelu_backward(dinp, inp, dout, n);
  }
  void gelu_erf_forward(float* out, const float* inp, size_t n) override {
    cpu::gelu_erf_forward(out, inp, n);
  }
  void gelu_erf_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cpu::gelu_erf_backward(dinp, inp, dout, n);
  }
  void tanh_forward(float* out, const float* inp, size_t n) override {
    cpu::tanh_forward(out, inp, n);
  }
  void tanh_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cpu::tanh_backward(dinp, inp, dout, n);
  }
  void relu_forward(float* out, const float* inp, size_t n) override {
    cpu::relu_forward(out, inp, n);
  }
  void relu_backward(float* dinp, const float* inp, const float* dout, size_t n) override {
    cpu::relu_backward(dinp, inp, dout, n);
  }
  void residual_forward(float* out, const float* a, const float* b, size_t n) override {
    cpu::residual_forward(out, a, b, n);
  }
  void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                       const DropoutBlock& blk) override {
    cpu::dropout_forward(out, inp, rows, cols, d, blk);
  }
  void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                        const DropoutBlock& blk) override {
    cpu::dropout_backward(dinp, dout, rows, cols, d, blk);
  }
  void dropout_residual_forward(float* out, const float* a, float* b, int rows, int cols,
                                const DropoutSpec& d, const DropoutBlock& blk) override {
    cpu::dropout_residual_forward(out, a, b, rows, cols, d, blk);
  }
  void gather_rows(float* out, const float* inp, const int32_t* rows, int n, int C) override {
    const bool split = step_parts(n, 16, [&](int r0, int r1) {
      cpu::gather_rows(out + static_cast<size_t>(r0) * static_cast<size_t>(C), inp, rows + r0,
                       r1 - r0, C);
    });
    if (!split) cpu::gather_rows(out, inp, rows, n, C);
  }
  void scatter_add_rows(float* dinp, const float* dout, const int32_t* rows, int n,
                        int C) override {
    cpu::scatter_add_rows(dinp, dout, rows, n, C);
  }
  void crossentropy_forward(float* losses, const float* logits, const int32_t* targets, int N,
                            int V, int Vp, int ignore_index, float smoothing) override {
    cpu::crossentropy_forward(losses, logits, targets, N, V, Vp, ignore_index, smoothing);
  }
  void crossentropy_fused(float* logits_to_dlogits, float* losses, const int32_t* targets, int N,
                          int V, int Vp, int ignore_index, float smoothing, float dloss) override {
    cpu::crossentropy_fused(logits_to_dlogits, losses, targets, N, V, Vp, ignore_index, smoothing,
                            dloss);
  }
  void vp_crossentropy_max(float* row_max, const float* logits, int N, int Vl, int v0,
                           int V) override {
    cpu::vp_crossentropy_max(row_max, logits, N, Vl, v0, V);
  }
  void vp_crossentropy_sums(float* sum_exp, float* target_logit, float* sum_logits,
                            const float* logits, const float* row_max, const int32_t* targets,
                            int N, int Vl, int v0, int V, int ignore_index) override {
    cpu::vp_crossentropy_sums(sum_exp, target_logit, sum_logits, logits, row_max, targets, N, Vl,
                              v0, V, ignore_index);
  }
  void vp_crossentropy_finish(float* losses, float* dlogits, const float* logits,
                              const float* row_max, const float* sum_exp, const float* target_logit,
                              const float* sum_logits, const int32_t* targets, int N, int Vl,
                              int v0, int V, int ignore_index, float smoothing,
                              float dloss) override {
    cpu::vp_crossentropy_finish(losses, dlogits, logits, row_max, sum_exp, target_logit, sum_logits,
                                targets, N, Vl, v0, V, ignore_index, smoothing, dloss);
  }
  void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                    const AdamWParams& a) override {
    cpu::adamw_update(params, grads, m, v, n, a);
  }
  void adamw_update_ranges(float* params, const float* grads, float* m, float* v,
                           const AdamWRange* ranges, size_t count, const AdamWParams& a) override {
    cpu::adamw_update_ranges(params, grads, m, v, ranges, count, a);
  }
  double sum_squares(const float* x, size_t n) override { return cpu::sum_squares(x, n); }
  void sum_squares_ranges(double* host_out, const float* x, const size_t* begin, const size_t* end,
                          size_t count) override {
    cpu::sum_squares_ranges(host_out, x, begin, end, count);
  }
  bool all_finite(const float* x, size_t n) override { return cpu::all_finite(x, n); }

 private:
  void require_fold() const {
    if (!folds_cross_attention())
      throw std::logic_error("cpu backend with bf16 GEMMs: no folded cross-attention");
  }
  // The linear layer's rounding scratch in bf16 mode; null (fp32 GEMMs) otherwise.
  cpu::Bf16Operands* bf16() {
    return precision_ == GemmPrecision::Bf16 ? &bf16_operands_ : nullptr;
  }

  static constexpr size_t kMapBytes = size_t{1} << 20;  // buffers this large are mappings

  GemmPrecision precision_;
  cpu::Bf16Operands bf16_operands_;
  CpuWeightStore* store_ = nullptr;  // Backend::use_weight_store
  int step_threads_ = 0;             // > 0: in a decoding step, OpenMP's threads before it
  std::mutex mapped_mutex_;
  std::unordered_map<void*, size_t> mapped_;  // mapping -> its length
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(GemmPrecision p) {
  return std::make_unique<CpuBackend>(p);
}

}  // namespace ph
