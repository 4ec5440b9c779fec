// polyhead against its PyTorch peer (bench/torch_gpt.py): a model trained for a few steps by
// the polyhead binary and evaluated by `polyhead eval` gives the same loss, to 1e-5 relative,
// as the same checkpoint evaluated by PyTorch — over the default architecture and over every
// non-default option. The peer runs under /usr/bin/python3 (Debian's, with python3-torch;
// POLYHEAD_PYTHON overrides the interpreter). Skipped when it lacks torch, h5py, numpy or yaml.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <regex>
#include <string>

#include "test_util.h"

namespace ph {
namespace {

using testing::run_command;
using testing::TempDir;
using testing::write_file;

const std::string kBin = testing::polyhead_binary();
const std::string kPython =
    std::getenv("POLYHEAD_PYTHON") ? std::getenv("POLYHEAD_PYTHON") : "/usr/bin/python3";
const std::string kPeer = testing::source_dir() + "/bench/torch_gpt.py";

struct EvalLine {
  double loss = NAN;
  long long tokens = -1;
};

// The `loss X over N tokens` line of polyhead eval or torch_gpt.py.
EvalLine parse_eval(const std::string& out) {
  static const std::regex re(R"((^|\n)loss ([0-9.eE+-]+) over ([0-9]+) tokens)");
  std::smatch m;
  EvalLine e;
  if (std::regex_search(out, m, re)) {
    e.loss = std::strtod(m[2].str().c_str(), nullptr);
    e.tokens = std::atoll(m[3].str().c_str());
  }
  return e;
}

// Skips the test (from the caller) when the peer's Python modules are missing.
std::string python_missing() {
  const testing::RunResult r = run_command(kPython + " -c 'import torch, h5py, numpy, yaml'");
  if (r.exit_code == 0) return "";
  return kPython +
         " cannot import torch, h5py, numpy and yaml (Debian: apt-get install "
         "python3-torch python3-h5py python3-numpy python3-yaml):\n" +
         r.output;
}

// Trains a small model for 20 steps on the synthetic task with `options`, then evaluates the
// final checkpoint on the first micro-batch of the run's val.bin with both programs.
void expect_parity(const std::string& options) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  const std::string cfg = tmp / "parity.yaml";
  write_file(cfg,
             "model:\n  n_layers: 2\n  d_model: 64\n  n_heads: 4\n  seq_len: 32\n"
             "train:\n  max_steps: 20\n  micro_batch: 4\n  eval_interval: 0\n  eval_batches: 1\n"
             "optim:\n  lr: 3.0e-3\n  warmup_steps: 5\n"
             "data:\n  task_digits: 3\n  task_train_problems: 5000\n  task_val_problems: 200\n"
             "sample:\n  count: 0\n"
             "log:\n  interval: 10\n"
             "run:\n  dir: " +
                 (tmp / "run") + "\n");
  const testing::RunResult train = run_command(kBin + " train " + cfg + " " + options);
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string ckpt = tmp / "run/checkpoints/step_00000020.h5";
  const std::string data = tmp / "run/data/val.bin";
  ASSERT_TRUE(std::filesystem::exists(ckpt)) << train.output;

  const testing::RunResult ours =
      run_command(kBin + " eval --checkpoint " + ckpt + " --data " + data + " --batches 1");
  ASSERT_EQ(ours.exit_code, 0) << ours.output;
  const testing::RunResult peer = run_command(kPython + " " + kPeer + " --checkpoint " + ckpt +
                                              " --data " + data + " --batches 1");
  ASSERT_EQ(peer.exit_code, 0) << peer.output;

  const EvalLine a = parse_eval(ours.output), b = parse_eval(peer.output);
  ASSERT_TRUE(std::isfinite(a.loss)) << ours.output;
  ASSERT_TRUE(std::isfinite(b.loss)) << peer.output;
  EXPECT_EQ(a.tokens, 4 * 32);
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NEAR(a.loss, b.loss, 1e-5 * std::fabs(b.loss))
      << "polyhead: " << ours.output << "torch: " << peer.output;
  // Trained, not the initial ~ln(256) = 5.55: the comparison covers learned weights.
  EXPECT_LT(a.loss, 5.0);
  std::printf("[ parity ] polyhead %.8f, torch %.8f over %lld tokens (%s)\n", a.loss, b.loss,
              a.tokens, options.empty() ? "defaults" : options.c_str());
}

TEST(TorchParity, DefaultArchitecture) {
  expect_parity("");
}

TEST(TorchParity, PostNormReluSinusoidalUntiedEmbedScale) {
  expect_parity(
      "model.norm=post model.activation=relu model.pos_encoding=sinusoidal "
      "model.tie_embeddings=false model.embed_scale=true");
}

TEST(TorchParity, NoBiasCustomFfnWidthTrainedWithDropout) {
  expect_parity(
      "model.bias=false model.d_ff=96 model.dropout.embed=0.1 model.dropout.attn=0.1 "
      "model.dropout.resid=0.1 optim.decay_1d=true");
}

}  // namespace
}  // namespace ph
