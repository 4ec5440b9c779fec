#include "trainer/memory_estimate.h"

#include <omp.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "io/addition_task.h"
#include "io/dataset.h"
#include "io/shard.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cuda/gemm_plan.h"
#include "model/embedding.h"
#include "parallel/agreement.h"
#include "parallel/grad_sync.h"
#include "trainer/compute.h"
#include "trainer/model_factory.h"
#include "trainer/optimizer.h"

#ifdef POLYHEAD_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "kernels/cuda/device.h"
#endif

namespace ph {

namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

// --- the process allowance (bench/README.md, "Memory estimate": measured 2026-11-30 on tiny,
// small and gpt2-124m, 1 and 2 threads; Debian 12, Open MPI 4.1, OpenBLAS 0.3.21) ---
// Resident memory of a rank beside its arenas, buffers and data: the libraries' code and data
// (Open MPI, HDF5, OpenBLAS, libstdc++, yaml-cpp), MPI's start-up, HDF5 / MPI-IO buffers of a
// checkpoint save (31-35 MiB measured with 2 threads), and per OpenMP thread its stack and the
// part of OpenBLAS's buffer that the fixed-size sgemm blocks touch (0.6 MiB measured on tiny).
constexpr uint64_t kProcessBase = 30 * kMiB;
constexpr uint64_t kProcessPerThread = 2 * kMiB;
// Peak address space (VmPeak) beyond the resident arenas, buffers and data: the above plus the
// library mappings not paged in, Open MPI's shared-memory segments and, per thread, its 8 MiB
// stack, a 64 MiB malloc arena reservation and OpenBLAS's buffer. Measured: 677-680 MiB with
// 2 threads on all three configs, 541 MiB with 1. A limit below it does not fail cleanly: under
// `ulimit -v` 8-12% below VmPeak, tiny hung after its set-up (spinning) instead of failing.
constexpr uint64_t kAddressBase = 420 * kMiB;
constexpr uint64_t kAddressPerThread = 140 * kMiB;
// The CUDA path (not measured on this machine, which has no GPU): device memory of the context,
// cuBLAS's workspace and the backend's fixed buffers; host memory of the CUDA runtime and
// libraries, and their address space.
constexpr uint64_t kCudaDeviceContext = 768 * kMiB;
constexpr uint64_t kNcclPerCommunicator = 256 * kMiB;  // device buffers of an NCCL communicator
constexpr uint64_t kCudaHost = 512 * kMiB;
constexpr uint64_t kCudaAddress = 8192 * kMiB;
// A build with the CUDA backend loads cudart, cuBLAS(Lt) and NCCL at start-up even when it trains
// on the CPU. Measured on this machine (tiny, 30 steps, 2 threads; same commit built with and
// without CUDA 13): peak RSS 247 vs 94 MiB, VmPeak 1595 vs 741 MiB; `--version` 231 vs 23 MiB.
#ifdef POLYHEAD_HAVE_CUDA
constexpr uint64_t kCudaLibrariesHost = 160 * kMiB;
constexpr uint64_t kCudaLibrariesAddress = 900 * kMiB;
#else
constexpr uint64_t kCudaLibrariesHost = 0;
constexpr uint64_t kCudaLibrariesAddress = 0;
#endif

// VocabArgmax (trainer/vocab_argmax.h) downloads this many rows of logits at a time.
constexpr uint64_t kArgmaxRows = 64;

uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

uint64_t sat_mul(uint64_t a, uint64_t b) {
  return b != 0 && a > UINT64_MAX / b ? UINT64_MAX : a * b;
}

size_t sum(std::initializer_list<size_t> parts) {
  uint64_t s = 0;
  for (size_t p : parts) s = sat_add(s, p);
  return static_cast<size_t>(s);
}

// A backend that allocates nothing: it counts the bytes it is asked for and the scratch the
// real backend of `device` would reserve, and hands out addresses that are never dereferenced
// (every op is a no-op; building a model issues none that reads memory on the host).
class CountingBackend final : public Backend {
 public:
  CountingBackend(Device device, GemmPrecision precision)
      : device_(device), precision_(precision) {}

  Device device() const override { return device_; }
  std::string describe() const override { return "memory estimate"; }
  GemmPrecision gemm_precision() const override { return precision_; }

  size_t allocated() const { return allocated_; }
  // Scratch the real backend holds beyond allocate(): the CPU backend's bf16 operand copies;
  // the CUDA backend's attention, bf16 and norm-range buffers.
  size_t scratch() const {
    size_t s = 0;
    for (size_t b : bf16_) s = sum({s, b});
    return sum({s, attention_, norm_ranges_});
  }

  void* allocate(size_t bytes) override {
    if (bytes == 0) return nullptr;
    allocated_ = sum({allocated_, bytes});
    const uintptr_t p = next_;
    next_ = static_cast<uintptr_t>(sat_add(next_, (bytes + 255) / 256 * 256));
    return reinterpret_cast<void*>(p);
  }
  void release(void*) noexcept override {}
  void zero(void*, size_t) override {}
  void copy(void*, const void*, size_t) override {}
  void upload(void*, const void*, size_t) override {}
  void download(void*, const void*, size_t) override {}
  void synchronize() override {}

  void reserve_attention(size_t probabilities) override {
    if (device_ == Device::Cuda)
      attention_ = std::max(attention_, static_cast<size_t>(sat_mul(probabilities, 4)));
  }
  void reserve_linear(int N, int IC, int OC) override {
    if (precision_ != GemmPrecision::Bf16) return;
    if (device_ == Device::Cpu) {
      const auto need = cpu::Bf16Operands::sizes(N, IC, OC);
      for (size_t k = 0; k < need.size(); ++k)
        bf16_[k] = std::max(bf16_[k], static_cast<size_t>(sat_mul(need[k], sizeof(float))));
    } else {
      const cuda::Bf16BufferSizes need = cuda::matmul_bf16_buffer_sizes(N, IC, OC);
      bf16_[0] = std::max(bf16_[0], static_cast<size_t>(sat_mul(need.a, sizeof(uint16_t))));
      bf16_[1] = std::max(bf16_[1], static_cast<size_t>(sat_mul(need.b, sizeof(uint16_t))));
    }
  }
  void reserve_norm_ranges(size_t count) override {
    if (device_ == Device::Cuda)
      norm_ranges_ = std::max(norm_ranges_, static_cast<size_t>(sat_mul(count, sizeof(double))));
  }

  void embedding_forward(float*, const int32_t*, const float*, const float*, int, int, int, int,
                         int, float) override {}
  void embedding_backward(float*, float*, const float*, const int32_t*, int, int, int, int, int,
                          float) override {}
  void sinusoidal_table(float*, int, int) override {}
  void layernorm_forward(float*, float*, float*, const float*, const float*, const float*, int, int,
                         float) override {}
  void layernorm_backward(float*, float*, float*, const float*, const float*, const float*,
                          const float*, const float*, int, int) override {}
  void matmul_forward(float*, const float*, const float*, const float*, int, int, int) override {}
  void matmul_backward(float*, float*, float*, const float*, const float*, const float*, int, int,
                       int) override {}
  void attention_forward(float*, float*, const float*, const float*, const AttentionDims&,
                         const DropoutSpec&, const AttentionCoords&) override {}
  void attention_backward(float*, float*, float*, const float*, const float*, const float*,
                          const float*, const AttentionDims&, const DropoutSpec&,
                          const AttentionCoords&) override {}
  void gelu_forward(float*, const float*, size_t) override {}
  void gelu_backward(float*, const float*, const float*, size_t) override {}
  void gelu_erf_forward(float*, const float*, size_t) override {}
  void gelu_erf_backward(float*, const float*, const float*, size_t) override {}
  void tanh_forward(float*, const float*, size_t) override {}
  void tanh_backward(float*, const float*, const float*, size_t) override {}
  void relu_forward(float*, const float*, size_t) override {}
  void relu_backward(float*, const float*, const float*, size_t) override {}
  void residual_forward(float*, const float*, const float*, size_t) override {}
  void dropout_forward(float*, const float*, int, int, const DropoutSpec&,
                       const DropoutBlock&) override {}
  void dropout_backward(float*, const float*, int, int, const DropoutSpec&,
                        const DropoutBlock&) override {}
  void gather_rows(float*, const float*, const int32_t*, int, int) override {}
  void scatter_add_rows(float*, const float*, const int32_t*, int, int) override {}
  void crossentropy_forward(float*, const float*, const int32_t*, int, int, int, int,
                            float) override {}
  void crossentropy_fused(float*, float*, const int32_t*, int, int, int, int, float,
                          float) override {}
  void vp_crossentropy_max(float*, const float*, int, int, int, int) override {}
  void vp_crossentropy_sums(float*, float*, float*, const float*, const float*, const int32_t*, int,
                            int, int, int, int) override {}
  void vp_crossentropy_finish(float*, float*, const float*, const float*, const float*,
                              const float*, const float*, const int32_t*, int, int, int, int, int,
                              float, float) override {}
  void adamw_update(float*, const float*, float*, float*, size_t, const AdamWParams&) override {}
  double sum_squares(const float*, size_t) override { return 0.0; }
  bool all_finite(const float*, size_t) override { return true; }

 private:
  Device device_;
  GemmPrecision precision_;
  size_t allocated_ = 0;
  uintptr_t next_ = uintptr_t{1} << 32;
  std::array<size_t, 3> bf16_{};
  size_t attention_ = 0, norm_ranges_ = 0;
};

std::string keyval(const std::string& key, int64_t v) {
  return key + "=" + std::to_string(v);
}

// The keys that size the model: "model.d_model=768 / model.n_layers=12 / model.vocab_size=50257".
std::string model_keys(const Config& cfg) {
  const ModelConfig& m = cfg.model;
  std::string s = keyval("model.d_model", m.d_model) + " / " +
                  keyval("model.n_layers", m.n_layers) + " / " +
                  keyval("model.vocab_size", m.vocab_size);
  if (m.d_ff > 0) s += " / " + keyval("model.d_ff", m.d_ff);
  if (cfg.parallel.tp > 1) s += " / " + keyval("parallel.tp", cfg.parallel.tp);
  return s;
}

// Sizes the model code keeps in int (rows of a micro-batch, widths, the padded vocabulary):
// a config past them cannot be built, let alone trained; refused here with the keys, before the
// model's own arithmetic would overflow.
void check_representable(const Config& cfg, const ProcessGrid& grid) {
  const ModelConfig& m = cfg.model;
  const auto too_large = [&](const std::string& what, long double v) {
    if (v <= static_cast<long double>(INT_MAX)) return;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3Lg", v);
    throw InputError("memory: " + what + " = " + buf + " exceeds " + std::to_string(INT_MAX) +
                     ", more than any run can hold");
  };
  const long double d = m.d_model, mb = cfg.train.micro_batch, T = m.seq_len;
  too_large("train.micro_batch x model.seq_len (" +
                keyval("train.micro_batch", cfg.train.micro_batch) + ", " +
                keyval("model.seq_len", m.seq_len) + ")",
            mb * T);
  too_large("the FFN width (4 x " + keyval("model.d_model", m.d_model) + ")",
            m.d_ff > 0 ? static_cast<long double>(m.d_ff) : 4 * d);
  too_large("the q, k, v width (3 x " + keyval("model.d_model", m.d_model) + ")", 3 * d);
  too_large("the padded vocabulary (" + keyval("model.vocab_size", m.vocab_size) + ")",
            static_cast<long double>(m.vocab_size) + 128.0L * grid.tp);
  // An order-of-magnitude bound (not the estimate): the model's size_t arithmetic must not wrap.
  const long double f = m.d_ff > 0 ? m.d_ff : 4 * d;
  const long double params = m.n_layers * (4 * d * d + 2 * d * f) + (m.vocab_size + T) * d;
  const long double rows = mb * T;
  const long double acts = rows * (m.n_layers * (16 * d + 2 * f) + m.vocab_size) +
                           mb * m.n_heads * T * T * m.n_layers * 2;
  if (16 * params > 0x1p62L || 4 * acts > 0x1p62L) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3Lg", 16 * params + 4 * acts);
    throw InputError(std::string("memory: the run would need about ") + buf + " bytes per rank (" +
                     model_keys(cfg) + "; " + keyval("train.micro_batch", cfg.train.micro_batch) +
                     " x " + keyval("model.seq_len", m.seq_len) + "), more than any machine has");
  }
}

uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// The token shards the run maps and reads in full when it opens its data.
uint64_t data_bytes(const Config& cfg) {
  uint64_t bytes = 0;
  if (cfg.data.train.empty()) {
    // The synthetic task's two shards (data_source.h), generated later into run.dir/data.
    const AdditionTask task{cfg.data.task_digits};
    const uint64_t line = static_cast<uint64_t>(std::max(task.line_length(), 0));
    const uint64_t problems =
        static_cast<uint64_t>(std::max(cfg.data.task_train_problems, 0)) +
        (cfg.data.val.empty() ? static_cast<uint64_t>(std::max(cfg.data.task_val_problems, 0)) : 0);
    bytes = problems * line * sizeof(uint16_t) + 2 * kShardHeaderBytes;
  }
  // Files named by the config (missing ones are reported when the data is opened).
  for (const auto* patterns : {&cfg.data.train, &cfg.data.val}) {
    if (patterns->empty()) continue;
    try {
      for (const std::string& f : expand_data_paths(*patterns))
        bytes = sat_add(bytes, file_size(f));
    } catch (const InputError&) {
    }
  }
  return bytes;
}

double gib(uint64_t b) {
  return static_cast<double>(b) / static_cast<double>(uint64_t{1} << 30);
}

}  // namespace

std::string format_bytes(uint64_t bytes) {
  char buf[64];
  if (bytes >= (uint64_t{1} << 40))
    std::snprintf(buf, sizeof buf, "%.1f TiB", gib(bytes) / 1024.0);
  else if (bytes >= (uint64_t{1} << 30))
    std::snprintf(buf, sizeof buf, "%.1f GiB", gib(bytes));
  else if (bytes >= kMiB)
    std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / kMiB);
  else if (bytes >= 1024)
    std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / 1024.0);
  else
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  return buf;
}

MemoryEstimate estimate_memory(const Config& cfg, const ProcessGrid& grid, int threads) {
  return estimate_memory(cfg, grid, use_cuda(cfg) ? Device::Cuda : Device::Cpu, threads);
}

MemoryEstimate estimate_memory(const Config& cfg, const ProcessGrid& grid, Device device,
                               int threads) {
  check_representable(cfg, grid);
  MemoryEstimate e;
  e.device = device;
  e.dp = grid.dp;
  e.tp = grid.tp;
  e.zero = cfg.parallel.zero == 1 && grid.dp > 1;
  e.threads = threads > 0 ? threads : std::max(1, omp_get_max_threads());

  // The model, the gradient sync and the optimizer as train() builds them, on a counting backend.
  CountingBackend be(device, gemm_precision(cfg));
  const int mb = cfg.train.micro_batch;
  {
    std::unique_ptr<Model> model = make_model(be, cfg, grid, grid.tp_comm.get(), mb,
                                              e.zero ? static_cast<size_t>(grid.dp) : 1);
    GradSync::Options so;
    so.dp = grid.dp;
    so.dp_rank = grid.dp_rank;
    so.zero = e.zero;
    so.overlap = grid.tp == 1;
    GradSync sync(be, grid.dp_comm.get(), model->grads(), model->arena_size(),
                  model->arena_capacity(), so);
    AdamW opt(be, cfg.optim, model->table(), sync.lo(), sync.hi());
    GradNorm norm(be, model->table(), sync.lo(), sync.hi(), grid.tp_rank == 0);

    e.parameters = model->table().full_count();
    e.arena_elements = model->arena_capacity();
    e.params = e.arena_elements * sizeof(float);
    e.grads = e.params;
    e.moments = 2 * opt.size() * sizeof(float);
    e.grad_shard = e.zero ? (sync.hi() - sync.lo()) * sizeof(float) : 0;
    // Everything else the backend was asked for: the activation arena and the token buffers
    // (Model::memory_bytes), and any buffer a block may add.
    e.activations = be.allocated() - e.params - e.grads - e.moments - e.grad_shard;
    e.scratch = be.scratch();

    // Host buffers of the trainer: the accumulated micro-batches (tokens and targets), the
    // model's per-token losses, the evaluator's batch and predictions and its argmax rows.
    const uint64_t rows = static_cast<uint64_t>(mb) * static_cast<uint64_t>(cfg.model.seq_len);
    const int global = cfg.train.global_batch > 0 ? cfg.train.global_batch : mb * grid.dp;
    const uint64_t accum = static_cast<uint64_t>(std::max(1, global / (mb * grid.dp)));
    const uint64_t batches = accum * rows * 2 * sizeof(int32_t);
    const uint64_t losses = rows * sizeof(float);
    const uint64_t eval = rows * 3 * sizeof(int32_t) + rows * 2 * (1 + grid.tp) * sizeof(float) +
                          kArgmaxRows * static_cast<uint64_t>(model->local_vocab()) * sizeof(float);
    e.buffers = static_cast<size_t>(sat_add(sat_add(batches, losses), eval));
    // initialize(): a host copy of the whole parameter arena, uploaded, then freed.
    e.init_copy = e.params;
    // A checkpoint save (trainer/checkpointing.cpp): the parameter arena and both moments on the
    // host; under ZeRO the moments of every shard are gathered into whole arenas beside them.
    e.staging = sum({e.params, e.moments, e.zero ? 2 * e.params : 0});
  }
  e.data = static_cast<size_t>(data_bytes(cfg));
  const uint64_t t = static_cast<uint64_t>(e.threads);
  e.process = static_cast<size_t>(kProcessBase + kProcessPerThread * t + kCudaLibrariesHost);

  const size_t arenas = sum({e.params, e.grads, e.activations, e.scratch});
  const size_t state = sum({e.moments, e.grad_shard});
  if (device == Device::Cpu) {
    // Initialisation: the arenas and the host copy; a save: arenas, state, buffers, staging.
    const size_t init = sum({arenas, e.init_copy});
    const size_t save = sum({arenas, state, e.buffers, e.staging});
    e.host_needed = sum({std::max(init, save), e.process});
    e.device_total = 0;
    e.address_space = sum({e.host_needed - e.process, e.data, kAddressBase, kAddressPerThread * t,
                           kCudaLibrariesAddress});
  } else {
    e.process = sum({e.process, kCudaHost});
    e.host_needed = sum({e.buffers, std::max(e.init_copy, e.staging), e.process});
    const uint64_t nccl =
        kNcclPerCommunicator * ((grid.tp > 1 ? 1u : 0u) + (grid.dp > 1 ? 1u : 0u));
    e.device_total = sum({arenas, state, kCudaDeviceContext, nccl});
    e.address_space = sum({e.host_needed - e.process, e.data, kAddressBase, kAddressPerThread * t,
                           kCudaAddress, kCudaLibrariesAddress});
  }
  e.host = sum({e.host_needed, e.data});
  return e;
}

MemoryAvailable available_memory(const MemoryEstimate& estimate, const ProcessGrid& grid) {
  MemoryAvailable a;
  std::ifstream meminfo("/proc/meminfo");
  std::string line;
  while (std::getline(meminfo, line)) {
    unsigned long long kb = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kb) == 1) {
      a.has_mem_available = true;
      a.mem_available = static_cast<uint64_t>(kb) * 1024;
      break;
    }
  }
  rlimit rl{};
  if (::getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
    a.has_rlimit_as = true;
    a.rlimit_as = static_cast<uint64_t>(rl.rlim_cur);
  }
#ifdef POLYHEAD_HAVE_CUDA
  if (estimate.device == Device::Cuda) {
    const cuda::DeviceInfo info = cuda::probe_cuda_devices();
    if (info.count > 0) {
      cuda::select_device(grid.local_rank);
      size_t free_bytes = 0, total_bytes = 0;
      if (cudaGetDevice(&a.device_ordinal) == cudaSuccess &&
          cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess) {
        a.has_device_free = true;
        a.device_free = free_bytes;
        a.device_sharers = 0;
        for (int r = 0; r < grid.local_size; ++r)
          a.device_sharers += r % info.count == grid.local_rank % info.count ? 1 : 0;
      } else {
        cudaGetLastError();
      }
    }
  }
#else
  (void)estimate;
  (void)grid;
#endif
  return a;
}

namespace {

struct Part {
  std::string text;
  size_t bytes;
};

// "parameters, gradients and AdamW moments 30.1 GiB from ...; activations 17.9 GiB from ..."
std::string parts_text(const MemoryEstimate& e, const Config& cfg, bool device_side, bool with_data,
                       size_t total) {
  std::vector<Part> parts;
  const bool arenas_here = device_side || e.device == Device::Cpu;
  if (arenas_here) {
    parts.push_back({std::string(e.zero ? "parameters, gradients and AdamW moments (a ZeRO shard)"
                                        : "parameters, gradients and AdamW moments") +
                         " " + format_bytes(e.model_state()) + " from " + model_keys(cfg),
                     SIZE_MAX});
    parts.push_back({"activations " + format_bytes(e.activations) + " from " +
                         keyval("train.micro_batch", cfg.train.micro_batch) + " x " +
                         keyval("model.seq_len", cfg.model.seq_len),
                     SIZE_MAX});
    if (e.scratch > 0) parts.push_back({"backend scratch " + format_bytes(e.scratch), e.scratch});
  }
  if (!device_side) {
    parts.push_back({"checkpoint staging " + format_bytes(e.staging) +
                         " (host copies of the parameters and moments while saving)",
                     e.staging});
    parts.push_back({"trainer buffers " + format_bytes(e.buffers), e.buffers});
    parts.push_back({"libraries, MPI and threads " + format_bytes(e.process), e.process});
    if (with_data) {  // the address space: what is mapped, not only what is resident
      parts.push_back({"token shards " + format_bytes(e.data) + " (memory-mapped data)", e.data});
      const size_t reserved = e.address_space - e.host;
      parts.push_back(
          {"address space reserved by the libraries and threads " + format_bytes(reserved),
           reserved});
    }
  } else {
    const size_t context = e.device_total - e.model_state() - e.activations - e.scratch;
    parts.push_back({"CUDA context, cuBLAS and NCCL " + format_bytes(context), context});
  }
  std::string s;
  for (const Part& p : parts) {
    // The model's parts always; the rest when they matter (a tenth of the total or more).
    if (p.bytes != SIZE_MAX && p.bytes < total / 10) continue;
    s += (s.empty() ? "" : "; ") + p.text;
  }
  return s;
}

}  // namespace

std::string memory_refusal(const MemoryEstimate& e, const MemoryAvailable& a, const Config& cfg,
                           int local_size) {
  struct Check {
    uint64_t need, avail;
    std::string what, source;
    bool device_side, with_data;
  };
  std::vector<Check> failing;
  const int local = std::max(local_size, 1);
  if (a.has_mem_available) {
    const uint64_t need = sat_mul(e.host_needed, static_cast<uint64_t>(local));
    if (need > a.mem_available)
      failing.push_back({e.host_needed, a.mem_available / static_cast<uint64_t>(local),
                         "memory: the run needs about " + format_bytes(e.host_needed) + " per rank",
                         local > 1
                             ? "MemAvailable " + format_bytes(a.mem_available) + " shared by the " +
                                   std::to_string(local) + " ranks of this node"
                             : "MemAvailable",
                         false, false});
  }
  if (a.has_rlimit_as && e.address_space > a.rlimit_as)
    failing.push_back({e.address_space, a.rlimit_as,
                       "memory: the run needs about " + format_bytes(e.address_space) +
                           " of address space per rank",
                       "RLIMIT_AS, ulimit -v", false, true});
  if (e.device == Device::Cuda && a.has_device_free) {
    const int sharers = std::max(a.device_sharers, 1);
    const uint64_t need = sat_mul(e.device_total, static_cast<uint64_t>(sharers));
    if (need > a.device_free)
      failing.push_back(
          {e.device_total, a.device_free / static_cast<uint64_t>(sharers),
           "device memory: the run needs about " + format_bytes(e.device_total) +
               " of GPU memory per rank",
           "free on cuda:" + std::to_string(a.device_ordinal) + ", cudaMemGetInfo" +
               (sharers > 1 ? ", shared by " + std::to_string(sharers) + " ranks" : ""),
           true, false});
  }
  if (failing.empty()) return "";
  // The tightest limit speaks.
  const Check* worst = &failing[0];
  for (const Check& c : failing)
    if (static_cast<long double>(c.need) * worst->avail >
        static_cast<long double>(worst->need) * c.avail)
      worst = &c;
  return worst->what + " (" +
         parts_text(e, cfg, worst->device_side, worst->with_data,
                    static_cast<size_t>(worst->need)) +
         "); " + format_bytes(worst->avail) + " are available (" + worst->source + ")";
}

void check_memory(const MemoryEstimate& estimate, const Config& cfg, const ProcessGrid& grid) {
  agree(*grid.world_comm, [&] {
    const std::string why =
        memory_refusal(estimate, available_memory(estimate, grid), cfg, grid.local_size);
    if (!why.empty()) throw InputError(why);
  });
}

std::string describe(const MemoryEstimate& e) {
  std::ostringstream o;
  const bool cpu = e.device == Device::Cpu;
  const auto line = [&](const char* name, uint64_t bytes, const std::string& note) {
    char buf[160];
    std::snprintf(buf, sizeof buf, "  %-26s %10s", name, format_bytes(bytes).c_str());
    o << buf << (note.empty() ? "" : "  " + note) << "\n";
  };
  o << "memory per rank (estimate; "
    << (cpu ? "CPU backend: the arenas are host memory"
            : "CUDA backend: the arenas are device memory")
    << "):\n";
  const std::string where = cpu ? "" : "device";
  line("parameters", e.params, where);
  line("gradients", e.grads, where);
  line("AdamW moments", e.moments,
       e.zero ? "this rank's ZeRO shard" + (where.empty() ? "" : ", " + where) : where);
  if (e.zero) line("ZeRO gradient shard", e.grad_shard, where);
  line("activations", e.activations, where);
  if (e.scratch > 0) line("backend scratch", e.scratch, where);
  line("trainer buffers", e.buffers, "micro-batches, losses, evaluation");
  line("init copy", e.init_copy, "host copy of the parameters at initialisation");
  line("checkpoint staging", e.staging, "host copies of the parameters and moments (saving)");
  line("token shards", e.data, "memory-mapped, file-backed");
  line("process", e.process,
       "libraries, MPI, " + std::to_string(e.threads) + " thread" + (e.threads == 1 ? "" : "s"));
  line("peak host (RSS)", e.host, "the larger of initialisation and a checkpoint save");
  line("address space", e.address_space, "compared with RLIMIT_AS");
  if (!cpu) line("peak device", e.device_total, "incl. the CUDA context");
  return o.str();
}

std::string describe(const MemoryAvailable& a, int local_size) {
  std::string s = "available: ";
  s += a.has_mem_available
           ? "MemAvailable " + format_bytes(a.mem_available) +
                 (local_size > 1 ? " for the " + std::to_string(local_size) + " ranks of this node"
                                 : "")
           : "MemAvailable unknown";
  s += a.has_rlimit_as ? "; RLIMIT_AS " + format_bytes(a.rlimit_as) : "; RLIMIT_AS unlimited";
  if (a.has_device_free)
    s += "; cuda:" + std::to_string(a.device_ordinal) + " " + format_bytes(a.device_free) + " free";
  return s;
}

}  // namespace ph
