// The polyhead binary on bad input: every case prints one clear message (once), exits with
// status 2, and never overwrites good data. Also --help/--version and a SIGINT stop.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <thread>

#include "io/json_string.h"
#include "test_util.h"
#include "trainer/compute.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::count_occurrences;
using testing::read_file;
using testing::run_command;
using testing::TempDir;
using testing::write_file;

const std::string kBin = testing::polyhead_binary();

// A small, fast config writing into dir.
std::string quick_config(const TempDir& tmp, const std::string& extra = "") {
  const std::string path = tmp / "quick.yaml";
  write_file(path,
             "model:\n  n_layers: 1\n  d_model: 16\n  n_heads: 2\n  seq_len: 16\n"
             "train:\n  max_steps: 4\n  micro_batch: 2\n  eval_interval: 2\n  eval_batches: 1\n"
             "optim:\n  warmup_steps: 1\n"
             "data:\n  task_digits: 2\n  task_train_problems: 500\n  task_val_problems: 50\n"
             "sample:\n  count: 1\n"
             "run:\n  dir: " +
                 (tmp / "run") + "\n" + extra);
  return path;
}

// Runs polyhead and expects exit status 2 with `needle` printed exactly once.
void expect_bad_input(const std::string& args, const std::string& needle) {
  const testing::RunResult r = run_command(kBin + " " + args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, needle), 1) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << args << "\n" << r.output;
}

TEST(Cli, VersionAndHelp) {
  auto r = run_command(kBin + " --version");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.output.find("polyhead "), std::string::npos);
  for (const char* cmd : {"train", "eval", "sample", "prepare", "inspect"}) {
    r = run_command(kBin + " " + cmd + " --help");
    EXPECT_EQ(r.exit_code, 0) << cmd;
    EXPECT_NE(r.output.find(std::string("usage: polyhead ") + cmd), std::string::npos) << cmd;
  }
  r = run_command(kBin + " train --help");
  EXPECT_NE(r.output.find("model.n_layers"), std::string::npos);  // config keys listed
  r = run_command(kBin);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("usage: polyhead"), std::string::npos);
}

TEST(Cli, BadCommandLine) {
  expect_bad_input("frobnicate", "unknown command 'frobnicate'");
  expect_bad_input("train", "train: missing CONFIG");
  expect_bad_input("sample", "sample: missing --checkpoint PATH");
  expect_bad_input("sample --checkpoint x.h5 --max-tokens lots", "--max-tokens expects an integer");
  expect_bad_input("eval --checkpoint", "eval: --checkpoint needs a value");
  expect_bad_input("inspect", "inspect: expects exactly one checkpoint PATH");
  expect_bad_input("prepare --out /tmp/x", "prepare: missing --input");
  expect_bad_input("train --bogus", "train: unknown option '--bogus'");
}

TEST(Cli, BadConfig) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp);
  expect_bad_input("train " + tmp / "nope.yaml", tmp / "nope.yaml");
  expect_bad_input("train " + cfg + " model.n_layer=3", "did you mean 'model.n_layers'");
  expect_bad_input("train " + cfg + " train.lr", "expected key.path=value");
  expect_bad_input("train " + cfg + " model.n_heads=3", "divisible");
  // Without a GPU: one message "no CUDA device: ..." and status 2.
  if (!cuda_unavailable().empty())
    expect_bad_input("train " + cfg + " runtime.device=cuda",
                     "runtime.device=cuda: no CUDA device: ");
  expect_bad_input("train " + cfg + " runtime.precision=fp16", "got 'fp16'");
  expect_bad_input("train " + cfg + " parallel.tp=2",
                   "parallel.tp=2 does not divide the world size 1");
  EXPECT_FALSE(fs::exists(tmp / "run/config.yaml"));  // no work was done
}

TEST(Cli, DeviceAutoFallsBackToTheCpuWithANotice) {
  TempDir tmp;
  const auto r = run_command(kBin + " train " + quick_config(tmp) + " runtime.device=auto");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (cuda_unavailable().empty()) {  // a GPU machine: auto takes the GPU
    EXPECT_NE(r.output.find("; backend cuda:"), std::string::npos) << r.output;
    return;
  }
  EXPECT_EQ(count_occurrences(r.output, "runtime.device=auto: no CUDA device"), 1) << r.output;
  EXPECT_NE(r.output.find("; running on the CPU"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("; backend cpu;"), std::string::npos) << r.output;
}

TEST(Cli, BadData) {
  TempDir tmp;
  expect_bad_input("train " + quick_config(tmp) + " data.train=" + tmp / "missing_*.bin",
                   "missing_*.bin' matches no file");
  write_file(tmp / "bad.bin", std::string(1024 + 64, 'x'));
  expect_bad_input("train " + quick_config(tmp) + " data.train=" + tmp / "bad.bin",
                   "bad.bin': bad magic number");
  expect_bad_input("prepare --input " + tmp / "absent.txt" + " --out " + tmp / "d",
                   "absent.txt': cannot open");
}

TEST(Cli, TrainEvalSampleInspectAndRefuseDamagedCheckpoints) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp);
  auto r = run_command(kBin + " train " + cfg);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("eval step 4"), std::string::npos) << r.output;
  const std::string ckpt = tmp / "run/checkpoints/step_00000004.h5";
  ASSERT_TRUE(fs::exists(ckpt)) << r.output;
  EXPECT_TRUE(fs::exists(tmp / "run/metrics.jsonl"));
  EXPECT_TRUE(fs::exists(tmp / "run/config.yaml"));

  r = run_command(kBin + " eval --checkpoint " + ckpt);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("task_accuracy"), std::string::npos) << r.output;
  r = run_command(kBin + " sample --checkpoint " + ckpt +
                  " --prompt 12+34= --max-tokens 4 --seed 3");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_EQ(r.output.rfind("12+34=", 0), 0u) << r.output;
  r = run_command(kBin + " inspect " + ckpt);
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("h.0.attn.q.weight"), std::string::npos) << r.output;

  // A truncated copy is refused; the good file and `latest` are untouched.
  const std::string good = read_file(ckpt);
  write_file(tmp / "trunc.h5", good.substr(0, good.size() / 2));
  expect_bad_input("eval --checkpoint " + tmp / "trunc.h5", "trunc.h5 is unreadable");
  expect_bad_input(
      "train " + cfg + " run.dir=" + tmp / "other" + " checkpoint.resume=" + tmp / "trunc.h5",
      "trunc.h5 is unreadable");
  // A checkpoint of another architecture is refused, naming the difference.
  expect_bad_input("train " + cfg + " model.d_model=32 train.max_steps=8",
                   "model.d_model is 32 in the config but 16 in the checkpoint");
  // A fresh run in a directory holding a run's checkpoints is refused.
  expect_bad_input("train " + cfg + " checkpoint.resume=none", "already holds checkpoints");
  EXPECT_EQ(good, read_file(ckpt));
  EXPECT_EQ(read_file(tmp / "run/checkpoints/latest"), "step_00000004.h5\n");
}

TEST(Cli, SamplePromptsBadInput) {
  TempDir tmp;
  const std::string ck = " --checkpoint " + tmp / "absent.h5";  // never read: the checks come first
  write_file(tmp / "empty.txt", "");
  write_file(tmp / "hole.txt", "12+34=\n\n7+8=\n");
  expect_bad_input("sample" + ck + " --prompt 1+2= --prompts " + tmp / "hole.txt",
                   "sample: give either --prompt TEXT or --prompts FILE, not both");
  expect_bad_input("sample" + ck + " --prompts " + tmp / "hole.txt" + " --batch 0",
                   "sample: --batch expects an integer in [1, 4096], got '0'");
  expect_bad_input("sample" + ck + " --prompts " + tmp / "hole.txt" + " --batch some",
                   "sample: --batch expects an integer in [1, 4096], got 'some'");
  expect_bad_input(
      "sample" + ck + " --prompts " + tmp / "nope.txt",
      "sample: cannot open --prompts '" + tmp / "nope.txt" + "': No such file or directory");
  expect_bad_input("sample" + ck + " --prompts " + tmp / "empty.txt",
                   "sample: --prompts '" + tmp / "empty.txt" + "' holds no prompt (one per line)");
  expect_bad_input("sample" + ck + " --prompts - < /dev/null",
                   "sample: --prompts standard input holds no prompt (one per line)");
  expect_bad_input(
      "sample" + ck + " --prompts " + tmp / "hole.txt",
      "sample: line 2 of --prompts '" + tmp / "hole.txt" + "' is empty (one prompt per line)");
}

// `polyhead sample ARGS` on the checkpoint; fails the test unless it exits 0.
std::string sample_output(const std::string& ckpt, const std::string& args) {
  const testing::RunResult r = run_command(kBin + " sample --checkpoint " + ckpt + " " + args);
  EXPECT_EQ(r.exit_code, 0) << args << "\n" << r.output;
  return r.output;
}

// What --prompts prints for a prompt given what --prompt prints for it.
std::string json_line(const std::string& prompt, const std::string& single_output) {
  EXPECT_EQ(single_output.rfind(prompt, 0), 0u) << single_output;
  EXPECT_EQ(single_output.back(), '\n');
  const std::string completion =
      single_output.substr(prompt.size(), single_output.size() - prompt.size() - 1);
  return "{\"prompt\": " + json_string(prompt) + ", \"completion\": " + json_string(completion) +
         "}\n";
}

TEST(Cli, SamplePromptsPrintsJsonLinesInInputOrder) {
  TempDir tmp;
  auto r = run_command(kBin + " train " + quick_config(tmp));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const std::string ckpt = tmp / "run/checkpoints/step_00000004.h5";
  // Different lengths, a quote and a backslash, a CRLF line end; 20 tokens slide past seq_len 16.
  const std::vector<std::string> prompts = {"12+34=", "7+8=", "\"q\"\\x", "99+1="};
  write_file(tmp / "prompts.txt", "12+34=\n7+8=\n\"q\"\\x\n99+1=\r\n");
  const std::string file = " --prompts " + tmp / "prompts.txt";
  const std::string opts = " --max-tokens 20 --seed 3";
  const auto quoted = [](const std::string& s) { return "'" + s + "'"; };  // no ' in the prompts

  // Greedy: every line is what --prompt gives for it.
  std::string want;
  for (const std::string& p : prompts)
    want += json_line(p, sample_output(ckpt, "--prompt " + quoted(p) + opts + " --temperature 0"));
  EXPECT_EQ(sample_output(ckpt, file + opts + " --temperature 0 --batch 3"), want);

  // Sampled (temperature 1): line 1 is what --prompt gives; no line depends on the batches.
  const std::string sampled = sample_output(ckpt, file + opts + " --batch 3");
  EXPECT_EQ(std::count(sampled.begin(), sampled.end(), '\n'), 4) << sampled;
  EXPECT_EQ(sampled.rfind(json_line(prompts[0], sample_output(ckpt, "--prompt 12+34=" + opts)), 0),
            0u)
      << sampled;
  size_t at = 0;
  for (const std::string& p : prompts) {  // the prompts in input order
    at = sampled.find("{\"prompt\": " + json_string(p) + ", \"completion\": \"", at);
    EXPECT_NE(at, std::string::npos) << p << "\n" << sampled;
  }
  EXPECT_NE(sampled, sample_output(ckpt, file + " --max-tokens 20 --seed 4 --batch 3"));
  EXPECT_EQ(sample_output(ckpt, file + opts + " --batch 1"), sampled);
  EXPECT_EQ(sample_output(ckpt, file + opts), sampled);  // train.micro_batch = 2
  EXPECT_EQ(sample_output(ckpt, "--prompts - " + opts + " < " + tmp / "prompts.txt"), sampled);
}

TEST(Cli, SigintSavesACheckpointAndExitsZero) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp, "");
  const std::string log = tmp / "log.txt";
  const pid_t pid = fork();
  if (pid == 0) {
    execl(kBin.c_str(), kBin.c_str(), "train", cfg.c_str(), "train.max_steps=100000",
          "log.interval=1", "checkpoint.interval=0", static_cast<char*>(nullptr));
    _exit(127);
  }
  // Wait until training has started (the metrics file appears), then interrupt.
  for (int i = 0; i < 300 && !fs::exists(tmp / "run/metrics.jsonl"); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  kill(pid, SIGINT);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  const std::string latest = read_file(tmp / "run/checkpoints/latest");
  ASSERT_FALSE(latest.empty());
  ASSERT_TRUE(fs::exists(tmp / ("run/checkpoints/" + latest.substr(0, latest.size() - 1))));
  const int64_t saved = std::stoll(latest.substr(5, 8));  // step_NNNNNNNN.h5
  EXPECT_GT(saved, 0);
  // Running the same command again continues from there.
  const auto r =
      run_command(kBin + " train " + cfg + " train.max_steps=" + std::to_string(saved + 2) +
                  " log.interval=1 checkpoint.interval=0");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("at step " + std::to_string(saved)), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("step " + std::string(6 - std::to_string(saved + 2).size(), ' ') +
                          std::to_string(saved + 2) + "/"),
            std::string::npos)
      << r.output;
}

TEST(Cli, BadInputUnderMpirunIsPrintedOnce) {
  TempDir tmp;
  const testing::RunResult r = run_command(testing::mpiexec_command(2) + kBin + " train " +
                                           quick_config(tmp) + " model.n_heads=3");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << r.output;
}

}  // namespace
}  // namespace ph
