// Models in and out (tools/export.py, tools/import.py, checkpoint.init_from, eval --logits): a
// GPT trained by the binary and exported to HF transformers gives HF the same logits as
// polyhead; export then import gives back the same bytes; a random HF GPT-2 imported gives
// polyhead HF's logits and fine-tunes through checkpoint.init_from; bad input is refused with one
// message. The peers run under /usr/bin/python3 with transformers from .venv/hf (POLYHEAD_PYTHON
// and POLYHEAD_HF_PATH override both); the tests skip without them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <string>

#include "test_util.h"

namespace ph {
namespace {

using testing::run_command;
using testing::RunResult;
using testing::TempDir;
using testing::write_file;

const std::string kBin = testing::polyhead_binary();
const std::string kSrc = testing::source_dir();

std::string python() {
  const char* py = std::getenv("POLYHEAD_PYTHON");
  const char* hf = std::getenv("POLYHEAD_HF_PATH");
  return "PYTHONPATH=" + (hf ? std::string(hf) : kSrc + "/.venv/hf") + " " +
         (py ? std::string(py) : std::string("/usr/bin/python3"));
}

// Why the peers cannot run ("" when they can); asked once per test program.
std::string python_missing() {
  static const std::string why = [] {
    const RunResult r = run_command(python() +
                                    " -c 'import torch, h5py, numpy, yaml, transformers, "
                                    "safetensors'");
    if (r.exit_code == 0) return std::string();
    return python() +
           " cannot import torch, h5py, numpy, yaml, transformers and safetensors (Debian's "
           "python3-torch python3-h5py python3-numpy python3-yaml; launch/pyenv.sh for "
           ".venv/hf):\n" +
           r.output;
  }();
  return why;
}

RunResult tool(const std::string& script, const std::string& args) {
  return run_command(python() + " " + kSrc + "/" + script + " " + args);
}

// The `max_abs_diff X over N logits` line of port_peer.py compare.
double max_abs_diff(const RunResult& r) {
  static const std::regex re(R"(max_abs_diff ([0-9.eE+-]+) over ([0-9]+) logits)");
  std::smatch m;
  if (r.exit_code != 0 || !std::regex_search(r.output, m, re)) return NAN;
  return std::strtod(m[1].str().c_str(), nullptr);
}

// A tiny run config of `family`'s shape (L=2, d=64, H=4, T=32) in tmp, on the synthetic task.
std::string write_config(const TempDir& tmp, const std::string& name, int steps) {
  const std::string cfg = tmp / (name + ".yaml");
  write_file(cfg,
             "model:\n  n_layers: 2\n  d_model: 64\n  n_heads: 4\n  seq_len: 32\n"
             "train:\n  max_steps: " +
                 std::to_string(steps) +
                 "\n  micro_batch: 4\n  eval_interval: 0\n  eval_batches: 1\n"
                 "optim:\n  lr: 3.0e-3\n  warmup_steps: 1\n"
                 "data:\n  task_digits: 3\n  task_train_problems: 2000\n"
                 "  task_val_problems: 100\n"
                 "sample:\n  count: 0\nlog:\n  interval: 1\nrun:\n  dir: " +
                 (tmp / name) + "\n");
  return cfg;
}

// The `loss` values of a run's metrics.jsonl, in order.
std::vector<double> losses(const std::string& run_dir) {
  static const std::regex re(R"("train_loss": ?([0-9.eE+-]+))");
  const std::string text = testing::read_file(run_dir + "/metrics.jsonl");
  std::vector<double> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator();
       ++it)
    out.push_back(std::strtod((*it)[1].str().c_str(), nullptr));
  return out;
}

// `polyhead eval --checkpoint ckpt --logits` (with `args`) against the model in model_dir
// (tests/port_peer.py compare): within 1e-4.
RunResult expect_same_logits(const TempDir& tmp, const std::string& ckpt, const std::string& args,
                             const std::string& model_dir, const std::string& what) {
  const RunResult logits = run_command(kBin + " eval --checkpoint " + ckpt + " --logits " +
                                       (tmp / "logits.json") + args);
  EXPECT_EQ(logits.exit_code, 0) << logits.output;
  const RunResult cmp =
      tool("tests/port_peer.py", "compare " + (tmp / "logits.json") + " " + model_dir);
  const double diff = max_abs_diff(cmp);
  EXPECT_TRUE(std::isfinite(diff)) << cmp.output;
  EXPECT_LT(diff, 1e-4) << cmp.output;
  std::printf("[ port ] %s: %s", what.c_str(), cmp.output.c_str());
  return cmp;
}

// Trains `config` (with `overrides`) for `steps` steps into tmp/run, exports the final
// checkpoint with --to `to` into tmp/out, and expects the exported model's logits on the first
// evaluation micro-batch to be polyhead's within 1e-4. Returns the checkpoint.
std::string expect_export_logits(const TempDir& tmp, const std::string& config,
                                 const std::string& overrides, int steps, const std::string& to,
                                 std::string* peer_output = nullptr) {
  const std::string run = tmp / "run";
  const std::string common = " run.dir=" + run + " sample.count=0 train.eval_interval=0";
  const std::string schedule = " optim.warmup_steps=1 train.max_steps=" + std::to_string(steps);
  const RunResult train =
      run_command(kBin + " train " + config + " " + overrides + common + schedule);
  EXPECT_EQ(train.exit_code, 0) << train.output;
  char name[32];
  std::snprintf(name, sizeof name, "step_%08d.h5", steps);
  const std::string ckpt = run + "/checkpoints/" + name;
  const RunResult ex = tool("tools/export.py", ckpt + " --to " + to + " " + (tmp / "out"));
  EXPECT_EQ(ex.exit_code, 0) << ex.output;
  const RunResult cmp = expect_same_logits(tmp, ckpt, common, tmp / "out", to + " export");
  if (peer_output) *peer_output = cmp.output;
  return ckpt;
}

// Imports the export in tmp/out again: every one of the `tensors` tensors of ckpt comes back
// byte for byte.
void expect_import_round_trip(const TempDir& tmp, const std::string& ckpt, int tensors) {
  const RunResult im = tool("tools/import.py", (tmp / "out") + " --out " + (tmp / "back.h5"));
  ASSERT_EQ(im.exit_code, 0) << im.output;
  const RunResult same =
      tool("tests/port_peer.py", "same-tensors " + ckpt + " " + (tmp / "back.h5"));
  EXPECT_NE(same.output.find(std::to_string(tensors) + " tensors, 0 differ"), std::string::npos)
      << same.output;
}

TEST(Port, GptExportGivesHfTheSameLogitsAndImportGivesBackTheSameBytes) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  // The options HF's GPT-2 expresses beside its defaults (the import test has those): its own
  // head (tie_word_embeddings false) and ReLU.
  const std::string ckpt =
      expect_export_logits(tmp, write_config(tmp, "cfg", 10),
                           "model.tie_embeddings=false model.activation=relu", 10, "hf");
  EXPECT_TRUE(std::filesystem::exists(tmp / "out/config.json"));
  EXPECT_TRUE(std::filesystem::exists(tmp / "out/model.safetensors"));
  expect_import_round_trip(tmp, ckpt, 37);
}

TEST(Port, BertExportGivesHfTheSameLogitsAndImportGivesBackTheSameBytes) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  const std::string ckpt = expect_export_logits(
      tmp, kSrc + "/configs/bert-tiny.yaml",
      "model.d_model=32 model.d_ff=64 train.micro_batch=8 train.eval_batches=1", 5, "hf");
  expect_import_round_trip(tmp, ckpt, 42);
}

TEST(Port, EncDecExportGivesTorchEncDecTheSameLogits) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  std::string peer;
  expect_export_logits(tmp, kSrc + "/configs/encdec-tiny.yaml",
                       "model.d_model=32 model.d_ff=64 train.micro_batch=8 train.eval_batches=1 "
                       "data.task_train_problems=2000 data.task_val_problems=100",
                       5, "torch", &peer);
  EXPECT_TRUE(std::filesystem::exists(tmp / "out/model.pt"));
  // The translation task's BPE tokenizer travels with the export, and AutoTokenizer loads it.
  EXPECT_NE(peer.find("tokenizer GPT2TokenizerFast of "), std::string::npos) << peer;
}

// Imports the HF model in tmp/hf: polyhead's logits (eval with `eval_args`) are HF's within
// 1e-4; then `train` (a command line training 20 steps in tmp/tune) with checkpoint.init_from
// starts from those weights and lowers the loss.
void expect_import_and_fine_tune(const TempDir& tmp, const std::string& eval_args,
                                 const std::string& train, const std::string& what) {
  const std::string imported = tmp / "imported.h5";
  const RunResult im = tool("tools/import.py", (tmp / "hf") + " --out " + imported);
  ASSERT_EQ(im.exit_code, 0) << im.output;
  // polyhead checks every checksum while it loads the file.
  expect_same_logits(tmp, imported, eval_args, tmp / "hf", what + " import");

  const RunResult tune = run_command(train + " run.dir=" + (tmp / "tune") +
                                     " log.interval=1 checkpoint.init_from=" + imported);
  ASSERT_EQ(tune.exit_code, 0) << tune.output;
  EXPECT_NE(tune.output.find("initialised from the weights of " + imported), std::string::npos)
      << tune.output;
  const std::vector<double> l = losses(tmp / "tune");
  ASSERT_EQ(l.size(), 20u) << tune.output;
  EXPECT_LT(l.back(), l.front() - 0.5) << tune.output;
  std::printf("[ port ] %s fine-tuned from the import: loss %.4f -> %.4f\n", what.c_str(),
              l.front(), l.back());
}

TEST(Port, ImportedGpt2GivesHfLogitsAndFineTunesFromInitFrom) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  const RunResult mk = tool("tests/port_peer.py", "make-hf gpt " + (tmp / "hf"));
  ASSERT_EQ(mk.exit_code, 0) << mk.output;
  expect_import_and_fine_tune(tmp, " train.micro_batch=4 run.dir=" + (tmp / "eval"),
                              kBin + " train " + write_config(tmp, "cfg", 20), "gpt");
}

TEST(Port, ImportedBertGivesHfLogitsAndFineTunesFromInitFrom) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  // bert-tiny's copies task, its data and its tokenizer (bytes and [PAD] [CLS] [SEP] [MASK]) from
  // a one-step run; the HF model of its shape gets that tokenizer.
  const std::string train = kBin + " train " + kSrc +
                            "/configs/bert-tiny.yaml model.d_model=32 model.d_ff=64 "
                            "train.micro_batch=8 optim.warmup_steps=1 sample.count=0 "
                            "train.eval_interval=0 train.eval_batches=1";
  const RunResult run = run_command(train + " train.max_steps=1 run.dir=" + (tmp / "run"));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  const RunResult mk =
      tool("tests/port_peer.py", "make-hf bert " + (tmp / "hf") +
                                     " vocab_size=260 hidden_size=32 intermediate_size=64 "
                                     "max_position_embeddings=20");
  ASSERT_EQ(mk.exit_code, 0) << mk.output;
  for (const char* f : {"vocab.json", "merges.txt"})
    std::filesystem::copy_file(tmp / (std::string("run/tokenizer/") + f),
                               tmp / (std::string("hf/") + f));
  expect_import_and_fine_tune(tmp, " data.task=copies run.dir=" + (tmp / "run"),
                              train + " train.max_steps=20", "bert");
}

TEST(Port, ExportRefusesWhatHfCannotExpress) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  const RunResult train =
      run_command(kBin + " train " + write_config(tmp, "run", 1) + " model.norm=post");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const RunResult ex = tool(
      "tools/export.py", (tmp / "run/checkpoints/step_00000001.h5") + " --to hf " + (tmp / "hf"));
  EXPECT_NE(ex.exit_code, 0);
  EXPECT_NE(ex.output.find("model.norm post: HF's GPT-2 is pre-LN only"), std::string::npos)
      << ex.output;
  EXPECT_FALSE(std::filesystem::exists(tmp / "hf"));
}

TEST(Port, EvalLogitsRefusesBadUse) {
  TempDir tmp;
  const RunResult train = run_command(kBin + " train " + write_config(tmp, "run", 1));
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string eval = kBin + " eval --checkpoint " +
                           (tmp / "run/checkpoints/step_00000001.h5") + " --data " +
                           (tmp / "run/data/val.bin") + " --logits ";
  RunResult r = run_command(eval + (tmp / "missing/logits.json"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.output.find("eval --logits: cannot write " + (tmp / "missing/logits.json.tmp")),
            std::string::npos)
      << r.output;
  r = run_command(testing::mpiexec_command(2) + eval + (tmp / "logits.json"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("eval: --logits needs one process"), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(tmp / "logits.json"));
}

TEST(Port, ImportRefusesOtherModelsAndWeightsThatDoNotFit) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  std::filesystem::create_directories(tmp / "t5");
  write_file(tmp / "t5/config.json", "{\"model_type\": \"t5\"}\n");
  RunResult r = tool("tools/import.py", (tmp / "t5") + " --out " + (tmp / "a.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("holds a 't5' model: import takes GPT-2"), std::string::npos) << r.output;

  ASSERT_EQ(tool("tests/port_peer.py",
                 "make-hf gpt " + (tmp / "silu") + " activation_function='\"silu\"'")
                .exit_code,
            0);
  r = tool("tools/import.py", (tmp / "silu") + " --out " + (tmp / "b.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("activation_function silu"), std::string::npos) << r.output;

  // config.json says 3 layers, the weights hold 2.
  ASSERT_EQ(tool("tests/port_peer.py", "make-hf gpt " + (tmp / "hf")).exit_code, 0);
  const std::string config = testing::read_file(tmp / "hf/config.json");
  write_file(tmp / "hf/config.json",
             std::regex_replace(config, std::regex(R"("n_layer": 2)"), R"("n_layer": 3)"));
  r = tool("tools/import.py", (tmp / "hf") + " --out " + (tmp / "c.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("the weights have no transformer.h.2.ln_1.weight"), std::string::npos)
      << r.output;
  for (const char* f : {"a.h5", "b.h5", "c.h5"}) EXPECT_FALSE(std::filesystem::exists(tmp / f));
}

TEST(Port, InitFromRefusesAMissingOrMismatchedCheckpoint) {
  if (const std::string why = python_missing(); !why.empty()) GTEST_SKIP() << why;
  TempDir tmp;
  RunResult r = run_command(kBin + " train " + write_config(tmp, "a", 1) +
                            " checkpoint.init_from=" + (tmp / "none.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("checkpoint.init_from: "), std::string::npos) << r.output;
  EXPECT_NE(r.output.find(tmp / "none.h5"), std::string::npos) << r.output;

  ASSERT_EQ(tool("tests/port_peer.py", "make-hf gpt " + (tmp / "hf")).exit_code, 0);
  ASSERT_EQ(tool("tools/import.py", (tmp / "hf") + " --out " + (tmp / "i.h5")).exit_code, 0);
  r = run_command(kBin + " train " + write_config(tmp, "b", 1) + " model.d_model=32 " +
                  "model.n_layers=3 checkpoint.init_from=" + (tmp / "i.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("model.n_layers is 3 in the config but 2 in the checkpoint"),
            std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("model.d_model is 32 in the config but 64 in the checkpoint"),
            std::string::npos)
      << r.output;

  r = run_command(kBin + " train " + write_config(tmp, "c", 1) + " checkpoint.resume=" +
                  (tmp / "i.h5") + " checkpoint.init_from=" + (tmp / "i.h5"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("both name a checkpoint to start from"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ph
