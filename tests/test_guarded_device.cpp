// The model and the trainer reach device memory only through the Backend interface — the
// property a first run on a GPU depends on, checked here without one. GuardedBackend is the CPU
// backend with "device" memory the host cannot touch: every allocation is its own mapping,
// kept PROT_NONE except while a backend call runs. Any direct host read or write of
// parameters, gradients, moments or activations from model or trainer code faults, so a
// training run with checkpoints, resume, evaluation and sampling that completes — and matches
// the plain CPU backend bit for bit — proves the code above the interface is device-clean.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>
#include <vector>

#include "io/checkpoint.h"
#include "model/gpt.h"
#include "test_util.h"
#include "tests/model_batch.h"
#include "tests/model_parallel_check.h"
#include "tests/test_backend.h"
#include "trainer/compute.h"
#include "trainer/trainer.h"

namespace ph {
namespace {

using testing::TempDir;

class GuardedBackend final : public Backend {
 public:
  explicit GuardedBackend(GemmPrecision p = GemmPrecision::Fp32) : cpu_(make_cpu_backend(p)) {}
  ~GuardedBackend() override {
    for (const Region& r : regions_) munmap(r.p, r.bytes);
  }

  Device device() const override { return Device::Cpu; }
  std::string describe() const override { return "cpu (guarded device memory)"; }
  GemmPrecision gemm_precision() const override { return cpu_->gemm_precision(); }

  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    const size_t rounded = (bytes + page - 1) / page * page;
    void* p = mmap(nullptr, rounded, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    regions_.push_back({p, rounded});  // anonymous mappings start zeroed
    return p;
  }
  void release(void* p) noexcept override {
    for (size_t i = 0; i < regions_.size(); ++i)
      if (regions_[i].p == p) {
        munmap(p, regions_[i].bytes);
        regions_.erase(regions_.begin() + static_cast<std::ptrdiff_t>(i));
        return;
      }
    if (p) {
      std::fprintf(stderr, "GuardedBackend::release of memory it did not allocate\n");
      std::abort();
    }
  }
  void zero(void* dst, size_t bytes) override {
    Open o(*this);
    cpu_->zero(dst, bytes);
  }
  void copy(void* dst, const void* src, size_t bytes) override {
    Open o(*this);
    cpu_->copy(dst, src, bytes);
  }
  void upload(void* dst, const void* host_src, size_t bytes) override {
    Open o(*this);
    cpu_->upload(dst, host_src, bytes);
  }
  void download(void* host_dst, const void* src, size_t bytes) override {
    Open o(*this);
    cpu_->download(host_dst, src, bytes);
  }
  void synchronize() override {}
  void reserve_attention(size_t probabilities) override { cpu_->reserve_attention(probabilities); }
  void reserve_linear(int N, int IC, int OC) override { cpu_->reserve_linear(N, IC, OC); }
  void reserve_norm_ranges(size_t count) override { cpu_->reserve_norm_ranges(count); }

  // Every op: open the device memory, run the CPU kernel, close it again.
#define PH_GUARDED(name, params, args) \
  void name params override {          \
    Open o(*this);                     \
    cpu_->name args;                   \
  }
  PH_GUARDED(embedding_forward,
             (float* out, const int32_t* tokens, const float* wte, const float* pos, int B, int T,
              int C, int vocab_start, int V_local, float scale),
             (out, tokens, wte, pos, B, T, C, vocab_start, V_local, scale))
  PH_GUARDED(embedding_backward,
             (float* dwte, float* dpos, const float* dout, const int32_t* tokens, int B, int T,
              int C, int vocab_start, int V_local, float scale),
             (dwte, dpos, dout, tokens, B, T, C, vocab_start, V_local, scale))
  PH_GUARDED(sinusoidal_table, (float* table, int T, int C), (table, T, C))
  PH_GUARDED(layernorm_forward,
             (float* out, float* mean, float* rstd, const float* inp, const float* w,
              const float* b, int N, int C, float eps),
             (out, mean, rstd, inp, w, b, N, C, eps))
  PH_GUARDED(layernorm_backward,
             (float* dinp, float* dw, float* db, const float* dout, const float* inp,
              const float* w, const float* mean, const float* rstd, int N, int C),
             (dinp, dw, db, dout, inp, w, mean, rstd, N, C))
  PH_GUARDED(matmul_forward,
             (float* out, const float* inp, const float* w, const float* bias, int N, int IC,
              int OC),
             (out, inp, w, bias, N, IC, OC))
  PH_GUARDED(matmul_backward,
             (float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
              const float* w, int N, int IC, int OC),
             (dinp, dw, dbias, dout, inp, w, N, IC, OC))
  PH_GUARDED(attention_forward,
             (float* out, float* att, const float* q, const float* kv, const AttentionDims& dims,
              const DropoutSpec& drop, const AttentionCoords& coords),
             (out, att, q, kv, dims, drop, coords))
  PH_GUARDED(attention_backward,
             (float* dq, float* dkv, float* datt, const float* dout, const float* q,
              const float* kv, const float* att, const AttentionDims& dims, const DropoutSpec& drop,
              const AttentionCoords& coords),
             (dq, dkv, datt, dout, q, kv, att, dims, drop, coords))
  PH_GUARDED(gelu_forward, (float* out, const float* inp, size_t n), (out, inp, n))
  PH_GUARDED(gelu_backward, (float* dinp, const float* inp, const float* dout, size_t n),
             (dinp, inp, dout, n))
  PH_GUARDED(gelu_erf_forward, (float* out, const float* inp, size_t n), (out, inp, n))
  PH_GUARDED(gelu_erf_backward, (float* dinp, const float* inp, const float* dout, size_t n),
             (dinp, inp, dout, n))
  PH_GUARDED(tanh_forward, (float* out, const float* inp, size_t n), (out, inp, n))
  PH_GUARDED(tanh_backward, (float* dinp, const float* inp, const float* dout, size_t n),
             (dinp, inp, dout, n))
  PH_GUARDED(relu_forward, (float* out, const float* inp, size_t n), (out, inp, n))
  PH_GUARDED(relu_backward, (float* dinp, const float* inp, const float* dout, size_t n),
             (dinp, inp, dout, n))
  PH_GUARDED(residual_forward, (float* out, const float* a, const float* b, size_t n),
             (out, a, b, n))
  PH_GUARDED(dropout_forward,
             (float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
              const DropoutBlock& blk),
             (out, inp, rows, cols, d, blk))
  PH_GUARDED(dropout_backward,
             (float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
              const DropoutBlock& blk),
             (dinp, dout, rows, cols, d, blk))
  PH_GUARDED(gather_rows, (float* out, const float* inp, const int32_t* rows, int n, int C),
             (out, inp, rows, n, C))
  PH_GUARDED(scatter_add_rows, (float* dinp, const float* dout, const int32_t* rows, int n, int C),
             (dinp, dout, rows, n, C))
  PH_GUARDED(crossentropy_forward,
             (float* losses, const float* logits, const int32_t* targets, int N, int V, int Vp,
              int ignore_index, float smoothing),
             (losses, logits, targets, N, V, Vp, ignore_index, smoothing))
  PH_GUARDED(crossentropy_fused,
             (float* logits_to_dlogits, float* losses, const int32_t* targets, int N, int V, int Vp,
              int ignore_index, float smoothing, float dloss),
             (logits_to_dlogits, losses, targets, N, V, Vp, ignore_index, smoothing, dloss))
  PH_GUARDED(vp_crossentropy_max,
             (float* row_max, const float* logits, int N, int Vl, int v0, int V),
             (row_max, logits, N, Vl, v0, V))
  PH_GUARDED(vp_crossentropy_sums,
             (float* sum_exp, float* target_logit, float* sum_logits, const float* logits,
              const float* row_max, const int32_t* targets, int N, int Vl, int v0, int V,
              int ignore_index),
             (sum_exp, target_logit, sum_logits, logits, row_max, targets, N, Vl, v0, V,
              ignore_index))
  PH_GUARDED(vp_crossentropy_finish,
             (float* losses, float* dlogits, const float* logits, const float* row_max,
              const float* sum_exp, const float* target_logit, const float* sum_logits,
              const int32_t* targets, int N, int Vl, int v0, int V, int ignore_index,
              float smoothing, float dloss),
             (losses, dlogits, logits, row_max, sum_exp, target_logit, sum_logits, targets, N, Vl,
              v0, V, ignore_index, smoothing, dloss))
  PH_GUARDED(adamw_update,
             (float* params, const float* grads, float* m, float* v, size_t n,
              const AdamWParams& a),
             (params, grads, m, v, n, a))
#undef PH_GUARDED
  double sum_squares(const float* x, size_t n) override {
    Open o(*this);
    return cpu_->sum_squares(x, n);
  }
  bool all_finite(const float* x, size_t n) override {
    Open o(*this);
    return cpu_->all_finite(x, n);
  }

  size_t regions() const {
    return regions_.size();
  }

 private:
  struct Region {
    void* p;
    size_t bytes;
  };
  // Device memory is readable and writable while an Open lives (one backend call).
  struct Open {
    explicit Open(GuardedBackend& b) : be(b) { be.protect(PROT_READ | PROT_WRITE); }
    ~Open() { be.protect(PROT_NONE); }
    GuardedBackend& be;
  };
  void protect(int prot) {
    for (const Region& r : regions_)
      if (mprotect(r.p, r.bytes, prot) != 0) std::abort();
  }

  std::unique_ptr<Backend> cpu_;
  std::vector<Region> regions_;
};

// True when the host can read n bytes at p: write(2) into a pipe reports EFAULT, instead of
// faulting, when the source is not readable.
bool host_readable(const void* p, size_t n) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  const ssize_t w = write(fds[1], p, n);
  close(fds[0]);
  close(fds[1]);
  return w == static_cast<ssize_t>(n);
}

// The small model of the multi-rank tests (dropout on, padded vocabulary).
ModelConfig small_model() {
  return testing::parallel_test_model();
}

TEST(GuardedDevice, DeviceMemoryIsUnreachableFromTheHostOutsideBackendCalls) {
  GuardedBackend be;
  Gpt model(be, small_model(), test::setup(2));
  model.initialize(3);
  EXPECT_GE(be.regions(), 5u);  // parameters, gradients, activations, tokens, targets
  EXPECT_FALSE(host_readable(model.params(), 4)) << "the guard is not in force";
  EXPECT_FALSE(host_readable(model.grads(), 4));
  EXPECT_FALSE(host_readable(model.logits(), 4));
  std::vector<float> host(model.arena_capacity());
  model.download_params(host.data());  // the sanctioned way
  EXPECT_TRUE(host_readable(host.data(), 4));
  EXPECT_EQ(host[model.table()[model.table().find("h.0.ln1.weight")].offset], 1.0f);
}

TEST(GuardedDevice, ModelStepMatchesTheCpuBackendBitForBit) {
  const ModelConfig mc = small_model();
  const test::ModelBatch batch = test::model_batch(2, mc.seq_len, mc.vocab_size, 9);
  GuardedBackend guarded;
  Gpt a(guarded, mc, test::setup(batch.batch.B)), b(test::cpu(), mc, test::setup(batch.batch.B));
  a.initialize(1);
  b.initialize(1);
  int64_t na = 0, nb = 0;
  const double la = test::step(a, batch, 0.01f, &na);
  const double lb = test::step(b, batch, 0.01f, &nb);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(na, nb);
  std::vector<float> ga(a.arena_capacity());
  guarded.download(ga.data(), a.grads(), ga.size() * sizeof(float));
  EXPECT_EQ(0, std::memcmp(ga.data(), b.grads(), ga.size() * sizeof(float)));
  double sq = 0.0;
  for (float g : ga) sq += static_cast<double>(g) * g;
  EXPECT_GT(sq, 0.0);
}

// A whole run — training with accumulation and dropout, evaluation, checkpoints, resume,
// samples — on guarded device memory, compared with the same run on the CPU backend.
TEST(GuardedDevice, TrainingRunNeverTouchesDeviceMemoryFromTheHost) {
  TempDir tmp;
  Config c = test::task_run(small_model(), tmp / "plain");
  c.train.global_batch = 8;
  c.train.max_steps = 6;
  c.optim.warmup_steps = 2;
  c.train.eval_interval = 3;
  c.train.eval_batches = 2;
  c.checkpoint.interval = 3;
  c.checkpoint.keep_last = 10;
  c.sample.count = 2;
  validate_config(c);
  const TrainSummary plain = train(c);

  set_cpu_backend_factory([](GemmPrecision p) { return std::make_unique<GuardedBackend>(p); });
  Config g = c;
  g.run.dir = tmp / "guarded";
  const TrainSummary first = train(g);  // 6 steps, checkpoints at 3 and 6
  Config r = g;
  r.run.dir = tmp / "resumed";
  r.checkpoint.resume = g.run.dir + "/checkpoints/" + checkpoint_file_name(3);
  const TrainSummary resumed = train(r);
  set_cpu_backend_factory({});

  ASSERT_EQ(first.steps_done, 6);
  ASSERT_EQ(resumed.steps_done, 6);
  EXPECT_EQ(first.final_val_loss, plain.final_val_loss);
  EXPECT_EQ(resumed.final_val_loss, plain.final_val_loss);
  EXPECT_EQ(first.task_accuracy, plain.task_accuracy);
}

// runtime.precision: bf16 reaches the backend (results change) and trains like fp32 (the
// validation loss after the run stays within 2%).
TEST(GuardedDevice, Bf16RunTrainsLikeFp32) {
  TempDir tmp;
  Config c = test::task_run(small_model(), tmp / "fp32");
  c.train.micro_batch = 8;
  c.train.max_steps = 30;
  c.train.eval_batches = 4;
  c.optim.warmup_steps = 5;
  validate_config(c);
  const TrainSummary fp32 = train(c);
  set_cpu_backend_factory([](GemmPrecision p) {
    EXPECT_EQ(p, GemmPrecision::Bf16);
    return std::make_unique<GuardedBackend>(p);
  });
  Config b = c;
  b.runtime.precision = Precision::kBf16;
  b.run.dir = tmp / "bf16";
  const TrainSummary bf16 = train(b);
  set_cpu_backend_factory({});
  EXPECT_NE(bf16.final_val_loss, fp32.final_val_loss);
  EXPECT_NEAR(bf16.final_val_loss, fp32.final_val_loss, 0.02 * fp32.final_val_loss);
  EXPECT_LT(bf16.final_val_loss, 5.0);  // below ln 256 = 5.55: it learned
}

}  // namespace
}  // namespace ph
