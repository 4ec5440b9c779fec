// The memory estimate (trainer/memory_estimate.h): its parts against the arenas the real model
// and optimizer allocate on the CPU backend, the refusal of a run that cannot fit (through the
// binary, with nothing written), `polyhead train --dry-run`, the estimate against the measured
// peak RSS of a short run, and `polyhead eval` on a shard without task problems.
#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "parallel/grad_sync.h"
#include "test_util.h"
#include "trainer/memory_estimate.h"
#include "trainer/model_factory.h"
#include "trainer/optimizer.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::count_occurrences;
using testing::run_command;
using testing::TempDir;
using testing::write_file;

const std::string kBin = testing::polyhead_binary();

Config config_of(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return parse_config(yaml, overrides, "test");
}

const char* kSmallModel =
    "model:\n  n_layers: 2\n  d_model: 32\n  n_heads: 4\n  seq_len: 16\n"
    "train:\n  micro_batch: 3\n";

// One rank of a layout of `dp` data-parallel ranks (tp = 1: no communicator is needed to build).
ProcessGrid grid_of(int dp, int dp_rank) {
  ProcessGrid g;
  g.world = dp;
  g.rank = dp_rank;
  g.dp = dp;
  g.dp_rank = dp_rank;
  return g;
}

size_t malloc_bytes() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

// Builds the model, gradient sync and optimizer on the real CPU backend as train() does and
// compares every part of the estimate with what they allocated.
void expect_exact(const Config& cfg, int dp, int dp_rank) {
  SCOPED_TRACE(config_to_yaml(cfg).substr(0, 400) + " dp=" + std::to_string(dp));
  const ProcessGrid grid = grid_of(dp, dp_rank);
  const MemoryEstimate e = estimate_memory(cfg, grid, Device::Cpu, 2);
  const bool zero = cfg.parallel.zero == 1 && dp > 1;
  EXPECT_EQ(e.zero, zero);

  const size_t before = malloc_bytes();
  {
    const GemmPrecision precision =
        cfg.runtime.precision == Precision::kBf16 ? GemmPrecision::Bf16 : GemmPrecision::Fp32;
    std::unique_ptr<Backend> be = make_cpu_backend(precision);
    std::unique_ptr<Model> model = make_model(*be, cfg, grid, nullptr, cfg.train.micro_batch,
                                              zero ? static_cast<size_t>(dp) : 1);
    GradSync::Options so;
    so.dp = dp;
    so.dp_rank = dp_rank;
    so.zero = zero;
    GradSync sync(*be, nullptr, model->grads(), model->arena_size(), model->arena_capacity(), so);
    AdamW opt(*be, cfg.optim, model->table(), sync.lo(), sync.hi());
    const size_t allocated = malloc_bytes() - before;

    const size_t arena = model->arena_capacity() * sizeof(float);
    EXPECT_EQ(e.parameters, model->table().full_count());
    EXPECT_EQ(e.arena_elements, model->arena_capacity());
    EXPECT_EQ(e.params, arena);
    EXPECT_EQ(e.grads, arena);
    EXPECT_EQ(e.activations, model->memory_bytes() - 2 * arena);
    EXPECT_EQ(e.moments, 2 * opt.size() * sizeof(float));
    EXPECT_EQ(e.grad_shard, zero ? (sync.hi() - sync.lo()) * sizeof(float) : 0);
    if (zero) {
      EXPECT_EQ(e.moments, 2 * arena / static_cast<size_t>(dp));
    }
    EXPECT_EQ(e.init_copy, arena);
    EXPECT_EQ(e.staging, arena + e.moments + (zero ? 2 * arena : 0));
    EXPECT_EQ(precision == GemmPrecision::Bf16, e.scratch > 0);
    // Independently of the model's own accounting: what malloc handed out while the model and
    // optimizer were built (page rounding and the host tables: a few KiB per buffer).
    const size_t estimated = e.model_state() + e.activations + e.scratch;
    EXPECT_GE(allocated + 4096, estimated);
    EXPECT_LE(allocated, estimated + 64 * 4096 + estimated / 100);
  }
  // The totals hold the parts (CPU: the arenas are host memory).
  EXPECT_GE(e.host, e.model_state() + e.activations + e.staging + e.process);
  EXPECT_EQ(e.host, e.host_needed + e.data);
  EXPECT_GT(e.address_space, e.host);
  EXPECT_EQ(e.device_total, 0u);
}

TEST(MemoryEstimate, ArenasExactOnTheCpuBackend) {
  expect_exact(config_of(kSmallModel), 1, 0);
  // Padded vocabulary, untied head, sinusoidal positions, post-norm, ReLU, no biases, d_ff,
  // dropout everywhere, a larger micro-batch.
  expect_exact(config_of(kSmallModel, {"model.vocab_size=1000", "model.tie_embeddings=false",
                                       "model.pos_encoding=sinusoidal", "model.norm=post",
                                       "model.activation=relu", "model.bias=false", "model.d_ff=48",
                                       "model.dropout.attn=0.1", "model.dropout.resid=0.1",
                                       "model.dropout.embed=0.1", "train.micro_batch=7"}),
               1, 0);
  // bf16 GEMM operands: the CPU backend's rounded copies are scratch.
  expect_exact(config_of(kSmallModel, {"runtime.precision=bf16"}), 1, 0);
  // ZeRO-1 over two data-parallel ranks: the moments and the gradient are shards.
  expect_exact(config_of(kSmallModel, {"parallel.zero=1"}), 2, 1);
  expect_exact(config_of(kSmallModel, {"parallel.zero=0"}), 2, 0);
  // The other families, whose index buffers (token types, prediction rows, source tokens) are
  // part of the model's memory too.
  expect_exact(config_of(kSmallModel, {"model.type=bert", "model.sentence_head=nsp",
                                       "model.seq_len=48", "train.micro_batch=1"}),
               1, 0);
  expect_exact(config_of(kSmallModel, {"model.type=encdec", "model.encoder_layers=1",
                                       "model.decoder_layers=1", "model.src_seq_len=12"}),
               1, 0);
}

TEST(MemoryEstimate, ActivationsScaleWithTheMicroBatch) {
  const ProcessGrid grid = grid_of(1, 0);
  const MemoryEstimate a = estimate_memory(config_of(kSmallModel), grid, Device::Cpu, 1);
  const MemoryEstimate b =
      estimate_memory(config_of(kSmallModel, {"train.micro_batch=6"}), grid, Device::Cpu, 1);
  EXPECT_EQ(a.params, b.params);
  EXPECT_EQ(a.moments, b.moments);
  EXPECT_EQ(b.activations, 2 * a.activations);
  // Gradient accumulation keeps every micro-batch of the step on the host.
  const MemoryEstimate c =
      estimate_memory(config_of(kSmallModel, {"train.global_batch=12"}), grid, Device::Cpu, 1);
  EXPECT_EQ(c.activations, a.activations);
  EXPECT_EQ(c.buffers - a.buffers, 3 * 3 * 16 * 2 * sizeof(int32_t));
}

TEST(MemoryEstimate, CudaPathPutsTheArenasOnTheDevice) {
  const ProcessGrid grid = grid_of(1, 0);
  const Config cfg = config_of(kSmallModel, {"model.dropout.attn=0.1"});
  const MemoryEstimate cpu = estimate_memory(cfg, grid, Device::Cpu, 2);
  const MemoryEstimate gpu = estimate_memory(cfg, grid, Device::Cuda, 2);
  EXPECT_EQ(gpu.params, cpu.params);
  EXPECT_EQ(gpu.activations, cpu.activations);
  // The CUDA backend reserves the dropped-out attention probabilities: B * H * T * T floats.
  EXPECT_GE(gpu.scratch, size_t{3} * 4 * 16 * 16 * sizeof(float));
  EXPECT_GT(gpu.device_total, gpu.model_state() + gpu.activations + gpu.scratch);
  // The host keeps the staging, not the arenas.
  EXPECT_GE(gpu.host_needed, gpu.staging + gpu.buffers);
  EXPECT_LT(gpu.host_needed - gpu.process, cpu.host_needed - cpu.process);
}

TEST(MemoryEstimate, RefusalNamesTheKeysAndTheLimit) {
  const ProcessGrid grid = grid_of(1, 0);
  const Config cfg = config_of(kSmallModel, {"model.d_model=65536", "model.n_heads=4"});
  const MemoryEstimate e = estimate_memory(cfg, grid, Device::Cpu, 2);
  MemoryAvailable plenty;
  plenty.has_mem_available = true;
  plenty.mem_available = uint64_t{1} << 50;
  EXPECT_EQ(memory_refusal(e, plenty, cfg, 1), "");

  MemoryAvailable little;
  little.has_mem_available = true;
  little.mem_available = uint64_t{8} << 30;
  std::string msg = memory_refusal(e, little, cfg, 1);
  EXPECT_EQ(msg.rfind("memory: the run needs about ", 0), 0u) << msg;
  EXPECT_NE(msg.find(format_bytes(e.host_needed) + " per rank"), std::string::npos) << msg;
  EXPECT_NE(msg.find("model.d_model=65536 / model.n_layers=2 / model.vocab_size=256"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find("train.micro_batch=3 x model.seq_len=16"), std::string::npos) << msg;
  EXPECT_NE(msg.find("8.0 GiB are available (MemAvailable)"), std::string::npos) << msg;

  // Four ranks of one node share MemAvailable.
  little.mem_available = e.host_needed * 3;
  EXPECT_EQ(memory_refusal(e, little, cfg, 2), "");
  msg = memory_refusal(e, little, cfg, 4);
  EXPECT_NE(msg.find("shared by the 4 ranks of this node"), std::string::npos) << msg;

  // The address-space limit, when it is the tighter one.
  MemoryAvailable limited = plenty;
  limited.has_rlimit_as = true;
  limited.rlimit_as = uint64_t{2} << 30;
  msg = memory_refusal(e, limited, cfg, 1);
  EXPECT_NE(msg.find("of address space per rank"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2.0 GiB are available (RLIMIT_AS, ulimit -v)"), std::string::npos) << msg;

  // The GPU, on the CUDA path.
  const MemoryEstimate g = estimate_memory(cfg, grid, Device::Cuda, 2);
  MemoryAvailable gpu = plenty;
  gpu.has_device_free = true;
  gpu.device_free = uint64_t{4} << 30;
  gpu.device_ordinal = 0;
  msg = memory_refusal(g, gpu, cfg, 1);
  EXPECT_EQ(msg.rfind("device memory: the run needs about ", 0), 0u) << msg;
  EXPECT_NE(msg.find("free on cuda:0, cudaMemGetInfo"), std::string::npos) << msg;
}

TEST(MemoryEstimate, SizesPastIntAreRefused) {
  const Config cfg = config_of(kSmallModel, {"model.d_model=1073741824", "model.n_heads=1"});
  try {
    estimate_memory(cfg, grid_of(1, 0), Device::Cpu, 1);
    FAIL() << "no refusal";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("model.d_model=1073741824"), std::string::npos)
        << e.what();
  }
}

// --- through the binary ---

std::string quick_config(const TempDir& tmp) {
  const std::string path = tmp / "quick.yaml";
  write_file(path,
             "model:\n  n_layers: 1\n  d_model: 16\n  n_heads: 2\n  seq_len: 16\n"
             "train:\n  max_steps: 2\n  micro_batch: 2\n  eval_interval: 0\n  eval_batches: 1\n"
             "optim:\n  warmup_steps: 1\n"
             "data:\n  task_digits: 2\n  task_train_problems: 500\n  task_val_problems: 50\n"
             "sample:\n  count: 0\n"
             "runtime:\n  threads: 2\n"
             "run:\n  dir: " +
                 (tmp / "run") + "\n");
  return path;
}

void expect_refused(const testing::RunResult& r, const std::string& cmd,
                    const std::vector<std::string>& needles, const std::string& run_dir) {
  EXPECT_EQ(r.exit_code, 2) << cmd << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "memory: the run needs about"), 1) << r.output;
  for (const std::string& n : needles) EXPECT_NE(r.output.find(n), std::string::npos) << n;
  EXPECT_FALSE(fs::exists(run_dir)) << "the refused run wrote " << run_dir;
}

TEST(MemoryCheck, AbsurdWidthIsRefusedBeforeAnythingIsWritten) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp);
  for (const std::string extra : {"", " --dry-run"}) {
    const std::string cmd = kBin + " train " + cfg + " model.d_model=1048576" + extra;
    expect_refused(run_command(cmd), cmd,
                   {"model.d_model=1048576 / model.n_layers=1 / model.vocab_size=256",
                    "train.micro_batch=2 x model.seq_len=16", "(MemAvailable"},
                   tmp / "run");
  }
}

TEST(MemoryCheck, AddressSpaceLimitIsRefusedBeforeAnythingIsWritten) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp);
  // About 2.5 GiB of logits and embeddings: more than ulimit -v allows, less than the machine.
  const std::string cmd = "bash -c \"ulimit -v 2000000; " + kBin + " train " + cfg +
                          " model.vocab_size=300000 train.micro_batch=64 model.seq_len=32\"";
  expect_refused(run_command(cmd), cmd,
                 {"of address space per rank", "model.vocab_size=300000",
                  "are available (RLIMIT_AS, ulimit -v)"},
                 tmp / "run");
}

TEST(MemoryCheck, DryRunPrintsTheEstimateAndWritesNothing) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp);
  const testing::RunResult r =
      run_command(kBin + " train " + cfg + " --dry-run train.micro_batch=4");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  for (const char* needle :
       {"dry run of", "layout: dp=1 tp=1", "parameters", "AdamW moments", "activations",
        "checkpoint staging", "peak host (RSS)", "available: MemAvailable", "the run fits"})
    EXPECT_NE(r.output.find(needle), std::string::npos) << needle << "\n" << r.output;
  // The parameter count of the model the run would build.
  const Config c = load_config(cfg, {"train.micro_batch=4"});
  const MemoryEstimate e = estimate_memory(c, grid_of(1, 0), Device::Cpu, 1);
  EXPECT_NE(r.output.find(std::to_string(e.parameters) + " parameters"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("step 1"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "run"));
}

// Peak resident memory of a polyhead run (fork, exec, wait4: the child's own rusage).
long peak_rss_kib(const std::vector<std::string>& args) {
  const pid_t pid = fork();
  if (pid == 0) {
    setenv("OMP_NUM_THREADS", "2", 1);
    if (!freopen("/dev/null", "w", stdout)) _exit(126);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(kBin.c_str()));
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(kBin.c_str(), argv.data());
    _exit(127);
  }
  int status = 0;
  struct rusage ru {};
  if (wait4(pid, &status, 0, &ru) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return -1;
  return ru.ru_maxrss;
}

TEST(MemoryCheck, EstimateWithinFifteenPercentOfPeakRss) {
  // The tiny config, a few steps and a checkpoint at the end (the peak: staging). The larger
  // configs are measured in bench/README.md ("Memory estimate").
  TempDir tmp;
  const std::string tiny = testing::source_dir() + "/configs/tiny.yaml";
  const std::vector<std::string> overrides = {"train.max_steps=3",    "train.eval_interval=0",
                                              "optim.warmup_steps=1", "sample.count=0",
                                              "runtime.threads=2",    "run.dir=" + (tmp / "run")};
  std::vector<std::string> args = {"train", tiny};
  args.insert(args.end(), overrides.begin(), overrides.end());
  const long kib = peak_rss_kib(args);
  ASSERT_GT(kib, 0);
  const double measured = static_cast<double>(kib) * 1024.0;
  const Config c = load_config(tiny, overrides);
  const MemoryEstimate e = estimate_memory(c, grid_of(1, 0), Device::Cpu, 2);
  const double est = static_cast<double>(e.host);
  EXPECT_LT(std::abs(est - measured) / measured, 0.15)
      << "estimate " << format_bytes(e.host) << ", measured peak RSS "
      << format_bytes(static_cast<uint64_t>(measured));
}

TEST(Eval, NoTaskAccuracyLineOnAShardWithoutProblems) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp);
  std::string text;
  for (int i = 0; i < 200; ++i)
    text += "the quick brown fox jumps over the lazy dog " + std::to_string(i) + "\n";
  write_file(tmp / "text.txt", text);
  auto r =
      run_command(kBin + " prepare --input " + (tmp / "text.txt") + " --out " + (tmp / "shard"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  r = run_command(kBin + " eval " + cfg + " --data " + (tmp / "shard/val.bin"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("loss "), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("task_accuracy"), std::string::npos) << r.output;
  // The task's own validation shard still gets its line.
  r = run_command(kBin + " eval " + cfg);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "task_accuracy "), 1) << r.output;
}

}  // namespace
}  // namespace ph
