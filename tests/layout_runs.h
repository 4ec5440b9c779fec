// The runs of the layout tests (test_layout_invariance, test_layout_families): the polyhead
// binary trained through mpiexec on a (dp, tp) layout, its metrics.jsonl read back, curves and
// checkpoints compared. Each test program is one process (an MPI singleton); every job is a
// nested mpiexec with a cleaned environment (testing::mpiexec_command).
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/config.h"
#include "test_util.h"
#include "tests/model_batch.h"
#include "tests/test_backend.h"
#include "trainer/model_factory.h"

namespace ph::testing {

inline const std::string kBin = testing::polyhead_binary();
inline const std::string kConfig = testing::source_dir() + "/configs/tiny.yaml";

// A small model and task (one step takes milliseconds), the same global batch on every
// layout (dp=1 accumulates 4 micro-batches, dp=2 two), dropout on at every site, a record
// per step. seq_len holds two 13-byte problem lines.
inline const std::string kOverrides =
    " model.n_layers=2 model.d_model=64 model.n_heads=4 model.seq_len=26"
    " model.dropout.embed=0.1 model.dropout.attn=0.1 model.dropout.resid=0.1"
    " data.task_digits=3 data.task_train_problems=20000 data.task_val_problems=200"
    " train.global_batch=16 train.micro_batch=4 train.eval_interval=0 optim.warmup_steps=2"
    " sample.count=0 log.interval=1 runtime.threads=1 checkpoint.interval=0";

struct Layout {
  int dp = 1, tp = 1;
  int world() const { return dp * tp; }
  std::string name() const {
    return "(dp=" + std::to_string(dp) + ", tp=" + std::to_string(tp) + ")";
  }
};

// One record of metrics.jsonl.
struct StepRecord {
  int64_t step = 0;
  double train_loss = NAN, grad_norm = NAN;
};

inline double json_field(const std::string& line, const std::string& key) {
  const std::string quoted = "\"" + key + "\": ";
  const size_t at = line.find(quoted);
  if (at == std::string::npos) return NAN;
  return std::strtod(line.c_str() + at + quoted.size(), nullptr);
}

inline std::vector<StepRecord> read_metrics(const std::string& path) {
  std::vector<StepRecord> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    StepRecord r;
    r.step = static_cast<int64_t>(json_field(line, "step"));
    r.train_loss = json_field(line, "train_loss");
    r.grad_norm = json_field(line, "grad_norm");
    out.push_back(r);
  }
  return out;
}

struct TrainedRun {
  RunResult result;
  std::string dir;
  std::vector<StepRecord> records;
};

// Trains `extra` (overrides after kOverrides) on `layout` into dir.
inline TrainedRun train_on(const Layout& layout, const std::string& dir, const std::string& extra) {
  TrainedRun run;
  run.dir = dir;
  run.result =
      run_command(mpiexec_command(layout.world()) + kBin + " train " + kConfig + kOverrides +
                  " parallel.tp=" + std::to_string(layout.tp) + " run.dir=" + dir + " " + extra);
  run.records = read_metrics(dir + "/metrics.jsonl");
  return run;
}

// The runs of the invariance tests, trained once per test program (several tests compare
// against the same reference).
inline const TrainedRun& cached_run(const Layout& layout, const std::string& extra) {
  static TempDir root;
  static std::map<std::string, TrainedRun> runs;
  const std::string key = layout.name() + extra;
  auto it = runs.find(key);
  if (it == runs.end()) {
    const std::string dir = root / ("run" + std::to_string(runs.size()));
    it = runs.emplace(key, train_on(layout, dir, extra)).first;
  }
  return it->second;
}

// Checks that a run succeeded on the layout it was asked for.
inline void expect_trained(const TrainedRun& run, const Layout& layout, const std::string& what) {
  ASSERT_EQ(run.result.exit_code, 0) << what << "\n" << run.result.output;
  const std::string banner =
      "layout dp=" + std::to_string(layout.dp) + " tp=" + std::to_string(layout.tp);
  ASSERT_NE(run.result.output.find(banner), std::string::npos)
      << what << ": expected '" << banner << "' in\n"
      << run.result.output;
}

inline bool close_rel(double a, double ref, double tol) {
  return std::isfinite(a) && std::isfinite(ref) && std::fabs(a - ref) <= tol * std::fabs(ref);
}

// Steps [first, last] of `got` match `ref`: losses within loss_tol, gradient norms within
// norm_tol (relative to ref); norm_tol < 0 skips the gradient norms.
inline void expect_same_curve(const std::vector<StepRecord>& got,
                              const std::vector<StepRecord>& ref, int64_t first, int64_t last,
                              double loss_tol, double norm_tol, const std::string& what) {
  std::map<int64_t, StepRecord> g, r;
  for (const StepRecord& s : got) g[s.step] = s;
  for (const StepRecord& s : ref) r[s.step] = s;
  for (int64_t step = first; step <= last; ++step) {
    ASSERT_TRUE(g.count(step)) << what << ": no record of step " << step;
    ASSERT_TRUE(r.count(step)) << what << ": the reference has no record of step " << step;
    const StepRecord &a = g[step], &b = r[step];
    EXPECT_TRUE(close_rel(a.train_loss, b.train_loss, loss_tol))
        << what << ", step " << step << ": train_loss " << a.train_loss << " vs " << b.train_loss;
    if (norm_tol >= 0) {
      EXPECT_TRUE(close_rel(a.grad_norm, b.grad_norm, norm_tol))
          << what << ", step " << step << ": grad_norm " << a.grad_norm << " vs " << b.grad_norm;
    }
  }
}

// The lines of `output` containing `needle`.
inline std::string lines_with(const std::string& output, const std::string& needle) {
  std::istringstream in(output);
  std::string line, out;
  while (std::getline(in, line))
    if (line.find(needle) != std::string::npos) out += line + "\n";
  return out;
}

inline const Layout k11{1, 1}, k21{2, 1}, k12{1, 2}, k22{2, 2};

// Every /model and /optim tensor of a checkpoint, read in full shape through the checkpoint
// store with the parameter table of the config the checkpoint embeds (any model family).
struct CheckpointTensors {
  CheckpointMeta meta;
  std::map<std::string, std::vector<float>> tensors;
};

inline CheckpointTensors read_all_tensors(const std::string& path) {
  CheckpointTensors out;
  out.meta = read_checkpoint_meta(path, MPI_COMM_WORLD);
  const Config cfg = parse_config(out.meta.config_yaml, {}, "checkpoint " + path);
  const ProcessGrid one;  // the unsharded table
  const std::unique_ptr<Model> model = make_model(ph::test::cpu(), cfg, one, nullptr, 1);
  std::vector<TensorSlice> slices;
  for (const char* prefix : {"/model/", "/optim/m/", "/optim/v/"})
    for (const Param& p : model->table().params()) {
      int64_t n = 1;
      for (int64_t d : p.shape) n *= d;
      std::vector<float>& data = out.tensors[prefix + p.name];
      data.assign(static_cast<size_t>(n), NAN);
      TensorSlice s;
      s.name = prefix + p.name;
      s.shape = p.shape;
      s.data = data.data();
      slices.push_back(std::move(s));
    }
  load_checkpoint(path, slices, MPI_COMM_WORLD);
  // Nothing in the file escaped the comparison.
  const std::string summary = describe_checkpoint(path, MPI_COMM_WORLD);
  const std::string want = "\ntensors           " + std::to_string(slices.size()) + " (";
  EXPECT_NE(summary.find(want), std::string::npos) << summary;
  return out;
}

// The tensors that differ in any bit (all of them listed, or "" when none).
inline std::string differing_tensors(const CheckpointTensors& a, const CheckpointTensors& b) {
  std::string diff;
  for (const auto& [name, va] : a.tensors) {
    const auto it = b.tensors.find(name);
    if (it == b.tensors.end() || it->second.size() != va.size() ||
        std::memcmp(va.data(), it->second.data(), va.size() * sizeof(float)) != 0)
      diff += " " + name;
  }
  return diff;
}

// The step-N checkpoint of a run directory.
inline std::string checkpoint_of(const std::string& dir, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08d.h5", step);
  return dir + "/checkpoints/" + name;
}

// An uninterrupted run of 20 steps on `from` (a checkpoint every 10), and its step-10 checkpoint
// resumed on each layout of `to`: every resumed run says where it resumed and trains steps 11 to
// 20 on the uninterrupted curve. `extra` sets train.max_steps=20; what = the family's name.
struct ResumedRuns {
  TrainedRun base;
  std::vector<TrainedRun> resumed;  // in the order of `to`
};

inline void resume_across(const TempDir& tmp, const std::string& what, const Layout& from,
                          const std::vector<Layout>& to, const std::string& extra,
                          ResumedRuns& out) {
  const std::string args = extra + " checkpoint.interval=10 checkpoint.keep_last=100";
  out.base = train_on(from, tmp / "base", args);
  ASSERT_NO_FATAL_FAILURE(expect_trained(out.base, from, what + " uninterrupted " + from.name()));
  ASSERT_EQ(out.base.records.size(), 20u) << out.base.result.output;
  const std::string ckpt10 = checkpoint_of(out.base.dir, 10);
  ASSERT_TRUE(std::filesystem::exists(ckpt10)) << out.base.result.output;
  ASSERT_TRUE(std::filesystem::exists(checkpoint_of(out.base.dir, 20))) << out.base.result.output;
  for (const Layout& l : to) {
    const std::string dir =
        tmp / ("resumed_dp" + std::to_string(l.dp) + "_tp" + std::to_string(l.tp));
    out.resumed.push_back(train_on(l, dir, args + " checkpoint.resume=" + ckpt10));
    const TrainedRun& run = out.resumed.back();
    const std::string about = what + " " + from.name() + " step 10 resumed on " + l.name();
    ASSERT_NO_FATAL_FAILURE(expect_trained(run, l, about));
    EXPECT_NE(run.result.output.find("at step 10"), std::string::npos) << run.result.output;
    ASSERT_FALSE(run.records.empty()) << about;
    EXPECT_EQ(run.records.front().step, 11) << about;
    EXPECT_EQ(run.records.size(), 10u) << about;
    expect_same_curve(run.records, out.base.records, 11, 20, 1e-4, 1e-3, about);
  }
}

// A run resumed on its own layout ends in the very state of the uninterrupted one: every model
// tensor and optimizer moment of the step-20 checkpoints, bit for bit (and the comparison can
// fail: the step-10 state differs).
inline void expect_bit_exact_resume(const TrainedRun& base, const TrainedRun& resumed) {
  const std::string final_ckpt = checkpoint_of(resumed.dir, 20);
  ASSERT_TRUE(std::filesystem::exists(final_ckpt)) << resumed.result.output;
  const CheckpointTensors a = read_all_tensors(checkpoint_of(base.dir, 20));
  const CheckpointTensors b = read_all_tensors(final_ckpt);
  EXPECT_EQ(a.meta.step, 20);
  EXPECT_EQ(b.meta.step, 20);
  EXPECT_EQ(a.meta.consumed_samples, b.meta.consumed_samples);
  EXPECT_EQ(a.meta.layout, b.meta.layout);
  EXPECT_EQ(a.tensors.size(), b.tensors.size());
  EXPECT_EQ(differing_tensors(a, b), "")
      << "tensors of the resumed run that differ from the uninterrupted run";
  EXPECT_NE(differing_tensors(a, read_all_tensors(checkpoint_of(base.dir, 10))), "");
}

}  // namespace ph::testing
