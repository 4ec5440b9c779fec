// The CUDA backend against the CPU backend (the reference) on a real GPU: forward, backward and
// 20 training steps of the same model, and tp=2 x dp=2 over NCCL against one CPU rank. Built in
// the CUDA configuration only, labelled `gpu`; without a usable GPU every test is skipped with
// the reason (ctest reports it as skipped, not passed).
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/cuda/backend.h"
#include "kernels/cuda/device.h"
#include "model/gpt.h"
#include "test_util.h"
#include "tests/model_batch.h"
#include "trainer/compute.h"
#include "trainer/trainer.h"

namespace ph {
namespace {

using testing::run_command;
using testing::TempDir;

#define PH_REQUIRE_GPUS(n)                                                                      \
  do {                                                                                          \
    const cuda::DeviceInfo info = cuda::probe_cuda_devices();                                   \
    if (info.count < (n))                                                                       \
      GTEST_SKIP() << "needs " << (n) << " GPU(s): "                                            \
                   << (info.count == 0 ? info.error                                             \
                                       : "found " + std::to_string(info.count) + " device(s)"); \
  } while (0)

ModelConfig parity_model() {
  ModelConfig m;
  m.n_layers = 2;
  m.d_model = 64;
  m.n_heads = 4;
  m.seq_len = 32;
  m.vocab_size = 200;  // padded to 256: exercises the padding columns
  m.dropout_embed = 0.1f;
  m.dropout_attn = 0.1f;
  m.dropout_resid = 0.1f;
  return m;
}

// max |a - b| / max |b| over the tensors, the error measure of fp32 results whose summation
// order differs between backends.
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::fabs(static_cast<double>(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// One forward + backward on the CUDA and CPU backends of the same precision.
void expect_step_parity(GemmPrecision precision) {
  const ModelConfig mc = parity_model();
  const int B = 3, T = mc.seq_len;
  const test::ModelBatch batch = test::model_batch(B, T, mc.vocab_size, 11, 7);
  const std::unique_ptr<Backend> gpu = cuda::make_cuda_backend(0, precision);
  const std::unique_ptr<Backend> cpu = make_cpu_backend(precision);
  Gpt g(*gpu, mc, test::setup(B)), c(*cpu, mc, test::setup(B));
  g.initialize(5);
  c.initialize(5);
  int64_t ng = 0, nc = 0;
  const double lg = test::step(g, batch, 1e-2f, &ng);
  const double lc = test::step(c, batch, 1e-2f, &nc);
  EXPECT_EQ(ng, nc);
  EXPECT_NEAR(lg, lc, 1e-5 * std::fabs(lc));
  std::vector<float> gg(g.arena_capacity()), gc(c.grads(), c.grads() + c.arena_capacity());
  gpu->download(gg.data(), g.grads(), gg.size() * sizeof(float));
  EXPECT_LT(relative_error(gg, gc), 1e-4);
  // Forward alone (dropout off): the logits.
  g.forward(batch.batch, DropoutContext{});
  c.forward(batch.batch, DropoutContext{});
  std::vector<float> logits_g(static_cast<size_t>(B) * T * g.local_vocab());
  std::vector<float> logits_c(logits_g.size());
  g.download_logits(logits_g.data(), 0, B * T);
  c.download_logits(logits_c.data(), 0, B * T);
  EXPECT_LT(relative_error(logits_g, logits_c), 1e-5);
}

TEST(GpuParity, ForwardAndBackwardMatchTheCpuBackend) {
  PH_REQUIRE_GPUS(1);
  expect_step_parity(GemmPrecision::Fp32);
}

// bf16 operands are rounded identically on both backends; only summation order differs.
TEST(GpuParity, Bf16ForwardAndBackwardMatchTheCpuBackend) {
  PH_REQUIRE_GPUS(1);
  expect_step_parity(GemmPrecision::Bf16);
}

// train_loss of every step in a run's metrics.jsonl.
std::vector<double> loss_curve(const std::string& metrics) {
  std::ifstream f(metrics);
  std::vector<double> out;
  std::string line;
  const std::string key = "\"train_loss\": ";
  while (std::getline(f, line)) {
    const size_t p = line.find(key);
    if (p != std::string::npos) out.push_back(std::stod(line.substr(p + key.size())));
  }
  return out;
}

Config parity_run(const std::string& dir, DeviceChoice device) {
  Config c = test::task_run(parity_model(), dir);
  c.train.global_batch = 8;
  c.train.max_steps = 20;
  c.train.eval_interval = 0;
  c.optim.warmup_steps = 5;
  c.log.interval = 1;
  c.runtime.device = device;
  validate_config(c);
  return c;
}

TEST(GpuParity, TwentyTrainingStepsFollowTheCpuLossCurve) {
  PH_REQUIRE_GPUS(1);
  TempDir tmp;
  train(parity_run(tmp / "cpu", DeviceChoice::kCpu));
  train(parity_run(tmp / "cuda", DeviceChoice::kCuda));
  const std::vector<double> c = loss_curve(tmp / "cpu/metrics.jsonl");
  const std::vector<double> g = loss_curve(tmp / "cuda/metrics.jsonl");
  ASSERT_EQ(c.size(), 20u);
  ASSERT_EQ(g.size(), c.size());
  for (size_t i = 0; i < c.size(); ++i) EXPECT_NEAR(g[i], c[i], 1e-3 * c[i]) << "step " << i + 1;
  EXPECT_LT(c.back(), c.front());  // it trained
}

// tp=2 x dp=2 on four GPUs (NCCL for activations and gradients) against one CPU rank.
TEST(GpuParity, TensorAndDataParallelOverNcclFollowOneCpuRank) {
  PH_REQUIRE_GPUS(4);
  TempDir tmp;
  const std::string base = " train " + testing::source_dir() +
                           "/configs/tiny.yaml train.max_steps=20 log.interval=1 "
                           "train.eval_interval=0 checkpoint.interval=0 sample.count=0 ";
  const auto cpu =
      run_command(testing::polyhead_binary() + base + "runtime.device=cpu run.dir=" + tmp / "c");
  ASSERT_EQ(cpu.exit_code, 0) << cpu.output;
  const auto gpu = run_command(testing::mpiexec_command(4) + testing::polyhead_binary() + base +
                               "runtime.device=cuda parallel.tp=2 run.dir=" + tmp / "g");
  ASSERT_EQ(gpu.exit_code, 0) << gpu.output;
  const std::vector<double> c = loss_curve(tmp / "c/metrics.jsonl");
  const std::vector<double> g = loss_curve(tmp / "g/metrics.jsonl");
  ASSERT_EQ(c.size(), 20u);
  ASSERT_EQ(g.size(), c.size());
  for (size_t i = 0; i < c.size(); ++i) EXPECT_NEAR(g[i], c[i], 1e-3 * c[i]) << "step " << i + 1;
}

}  // namespace
}  // namespace ph
