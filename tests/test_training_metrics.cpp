// What a run reports beyond the loss, through the binary: MFU, peak host memory and the model
// FLOPs per token in the log line and metrics.jsonl (every number at full precision, valid
// JSON), MFU = flops_per_token x tokens/s / the peak, the peak chosen by runtime.peak_tflops or
// measured, agreement with bench_train within 10% on the same model, and log.tensorboard's
// event files holding every numeric field of every record, also across a resume (read back
// with TensorBoard's own reader; skipped where the tensorboard package is missing). The
// encoder-decoder's training step counts the FLOPs of the positions it computes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iterator>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "io/config.h"
#include "io/flat_json.h"
#include "model/encdec.h"
#include "parallel/grad_sync.h"
#include "parallel/grid.h"
#include "tests/tensorboard_peer.h"
#include "tests/test_backend.h"
#include "tests/test_util.h"
#include "trainer/compute.h"
#include "trainer/device_peak.h"
#include "trainer/model_factory.h"
#include "trainer/model_flops.h"
#include "trainer/optimizer.h"
#include "trainer/sample_source.h"
#include "trainer/train_step.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::read_file;
using testing::run_command;
using testing::RunResult;
using testing::TempDir;

const std::string kBin = testing::polyhead_binary();
const std::string kTiny = testing::source_dir() + "/configs/tiny.yaml";

// One metrics record: each field's JSON text, in order.
using Record = std::vector<std::pair<std::string, std::string>>;

std::vector<Record> read_records(const std::string& path) {
  std::vector<Record> out;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) {
    Record r;
    read_flat_json_object(line, path, [&](std::string&& key, std::string_view number, size_t) {
      r.emplace_back(std::move(key), std::string(number));
    });
    out.push_back(std::move(r));
  }
  return out;
}

const std::string* field(const Record& r, const std::string& key) {
  for (const auto& [k, v] : r)
    if (k == key) return &v;
  return nullptr;
}

double number(const Record& r, const std::string& key) {
  const std::string* v = field(r, key);
  return v ? std::strtod(v->c_str(), nullptr) : NAN;
}

// The parameter count the run printed ("model: ..., N parameters;").
int64_t printed_parameters(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex(", ([0-9]+) parameters;"))) return -1;
  return std::stoll(m[1]);
}

// The job's peak the run printed ("MFU peak X GFLOP/s"), in FLOP/s.
double printed_peak(const std::string& output) {
  std::smatch m;
  if (!std::regex_search(output, m, std::regex("MFU peak ([0-9.]+) GFLOP/s"))) return NAN;
  return std::stod(m[1]) * 1e9;
}

RunResult train(const std::string& dir, const std::string& extra) {
  return run_command(kBin + " train " + kTiny + " run.dir=" + dir +
                     " sample.count=0 checkpoint.interval=0 optim.warmup_steps=2 " + extra);
}

TEST(TrainingMetrics, RecordsCarryMfuMemoryAndFlopsAtFullPrecision) {
  TempDir tmp;
  const std::string tb = tmp / "elsewhere/tb";  // absolute: used as it is
  const RunResult r = train(
      tmp / "run", "train.max_steps=6 log.interval=2 train.eval_batches=2 log.tensorboard=" + tb);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("(best of 3 sgemm 2048^3 at start-up, 2 threads)"), std::string::npos)
      << r.output;
  EXPECT_GT(printed_peak(r.output), 1e9) << r.output;
  // Every log line shows MFU and the peak RSS; the CPU has no device memory.
  EXPECT_EQ(testing::count_occurrences(r.output, "/6 | loss "), 4) << r.output;
  EXPECT_EQ(testing::count_occurrences(r.output, "% | RSS "), 4) << r.output;
  EXPECT_EQ(r.output.find("GPU mem"), std::string::npos) << r.output;

  const Config cfg = load_config(kTiny, {});
  const double fpt = flops_per_token(cfg, printed_parameters(r.output));
  const std::vector<Record> records = read_records(tmp / "run/metrics.jsonl");
  ASSERT_EQ(records.size(), 4u);  // steps 1, 2, 4, 6
  for (const Record& rec : records) {
    EXPECT_EQ(number(rec, "flops_per_token"), fpt);  // the library's formula, to the last bit
    // Above 1 only when the machine got busier after the start-up probe than during it.
    EXPECT_GT(number(rec, "mfu"), 0.0);
    EXPECT_LT(number(rec, "mfu"), 10.0);
    EXPECT_GT(number(rec, "peak_rss_mb"), 10.0);
    EXPECT_LT(number(rec, "peak_rss_mb"), 24576.0);
    EXPECT_EQ(field(rec, "device_mem_mb"), nullptr);
    // Full precision: a rate has far more than the 6 significant digits of %g.
    const std::string* rate = field(rec, "tokens_per_s");
    ASSERT_NE(rate, nullptr);
    EXPECT_GE(std::regex_replace(*rate, std::regex("[^0-9]"), "").size(), 10u) << *rate;
  }
  EXPECT_TRUE(field(records.back(), "val_loss"));
  EXPECT_TRUE(field(records.back(), "task_accuracy"));
  ASSERT_TRUE(fs::exists(tb)) << r.output;
  ASSERT_EQ(std::distance(fs::directory_iterator(tb), fs::directory_iterator()), 1);
  EXPECT_EQ(fs::directory_iterator(tb)->path().filename().string().rfind("events.out.tfevents.", 0),
            0u);
}

TEST(TrainingMetrics, MfuIsModelFlopsPerSecondOverTheConfiguredPeak) {
  TempDir tmp;
  const RunResult r =
      train(tmp / "run", "train.max_steps=4 log.interval=2 runtime.peak_tflops=0.25");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("MFU peak 250.0 GFLOP/s (runtime.peak_tflops = 0.25)"), std::string::npos)
      << r.output;
  // The addition task counts every target of its windows: tokens/s are the positions/s.
  for (const Record& rec : read_records(tmp / "run/metrics.jsonl")) {
    const double want = number(rec, "flops_per_token") * number(rec, "tokens_per_s") / 0.25e12;
    EXPECT_NEAR(number(rec, "mfu"), want, 1e-12 * want);
  }
}

// The formulas of trainer/model_flops.h, counted by hand on small shapes.
TEST(ModelFlops, CountedByHand) {
  // tiny.yaml: V 256, d 128, T 52, L 2, learned positions, tied; 436224 parameters, of which
  // wte 32768 and wpe 6656: 6 * 396800 + 6 * 256 * 128 + 12 * 2 * 52 * 128.
  EXPECT_EQ(flops_per_token(load_config(kTiny, {}), 436224), 2737152.0);
  ModelConfig m;
  m.d_model = 2;
  m.d_ff = 8;
  m.vocab_size = 10;
  m.seq_len = 4;
  m.n_layers = 1;
  m.src_seq_len = 3;
  // encoder per source position 6 (16 + 32) + 12 * 3 * 2 = 360, + cross k|v 6 * 8 = 48;
  // decoder per target position 6 (24 + 32) + 12 * 4 * 2 + 12 * 3 * 2 + 6 * 10 * 2 = 624.
  EXPECT_EQ(encdec_flops_per_step(m, 1), 3 * 408.0 + 4 * 624.0);
  EXPECT_EQ(encdec_flops_per_step(m, 5), 5 * encdec_flops_per_step(m, 1));
  EXPECT_EQ(encdec_flops(m, 2, 3), 2 * 408.0 + 3 * 624.0);  // packed: real positions only
  // The one (last) layer: per position q|k|v 6 * 12 + 12 * 4 * 2 = 168; per row the heads
  // read (the P slots and, with nsp, [CLS]) proj and FFN 6 (4 + 32) = 216; per prediction
  // 6 (4 + 20); nsp 6 (4 + 4).
  m.sentence_head = SentenceHead::kNsp;
  EXPECT_EQ(bert_flops_per_step(m, 1, 1), 4 * 168.0 + 2 * 216 + 144 + 48);
  m.sentence_head = SentenceHead::kNone;
  EXPECT_EQ(bert_flops_per_step(m, 2, 3), 2 * (4 * 168.0 + 3 * 216 + 3 * 144));
  m.n_layers = 2;  // the first layer computes every row: 168 + 216 = 384 per position
  EXPECT_EQ(bert_flops_per_step(m, 1, 4), 4 * 384.0 + 4 * 168 + 4 * 216 + 4 * 144);
  m.n_layers = 1;
  Config cfg;
  cfg.model = m;
  cfg.model.type = ModelType::kEncDec;
  EXPECT_EQ(flops_per_token(cfg, 0), encdec_flops_per_step(m, 1) / 4);
  cfg.model.type = ModelType::kBert;
  EXPECT_EQ(flops_per_token(cfg, 0), bert_flops_per_step(m, 1, cfg.data.mlm_predictions(4)) / 4);
}

// Pairs whose lengths are known: global sample g has 1 + g % S source positions and 1 + g % T
// target positions, the first target ignored (a counted one follows it, so the position is
// still computed).
class KnownLengthPairs : public SampleSource {
 public:
  explicit KnownLengthPairs(const ModelConfig& m) : S_(m.source_len()), T_(m.seq_len) {}
  uint64_t size() const override { return 1000; }
  void shape(Batch& b, int rows) const override {
    b.B = rows;
    b.S = S_;
    b.T = T_;
    b.source.assign(static_cast<size_t>(rows * S_), 1);
    b.source_lengths.assign(static_cast<size_t>(rows), 1);
    b.tokens.assign(static_cast<size_t>(rows * T_), 2);
    b.targets.assign(static_cast<size_t>(rows * T_), kIgnoreIndex);
  }
  void fill(uint64_t first, int count, Batch& b) override {
    b.B = count;
    for (int i = 0; i < count; ++i) {
      const int g = static_cast<int>(first) + i;
      b.source_lengths[static_cast<size_t>(i)] = 1 + g % S_;
      for (int t = 0; t < T_; ++t)
        b.targets[static_cast<size_t>(i * T_ + t)] = t > 0 && t <= g % T_ ? 3 : kIgnoreIndex;
    }
  }
  int source(int g) const { return 1 + g % S_; }
  int target(int g) const { return g % T_ == 0 ? 0 : 1 + g % T_; }

 private:
  int S_, T_;
};

TEST(ModelFlops, TheEncoderDecoderStepCountsThePositionsItComputes) {
  Config cfg;
  cfg.model.type = ModelType::kEncDec;
  cfg.model.vocab_size = 11;
  cfg.model.n_layers = 1;
  cfg.model.d_model = 8;
  cfg.model.n_heads = 2;
  cfg.model.seq_len = 5;
  cfg.model.src_seq_len = 7;
  cfg.train.micro_batch = 3;
  cfg.train.global_batch = 6;  // two micro-batches
  const ProcessGrid grid = make_grid(1);
  std::unique_ptr<Model> model =
      make_model(test::cpu(), cfg, grid, grid.tp_comm.get(), cfg.train.micro_batch);
  model->initialize(1);
  GradSync sync(test::cpu(), grid.dp_comm.get(), model->grads(), model->arena_size(),
                model->arena_capacity(), GradSync::Options{});
  AdamW opt(test::cpu(), cfg.optim, model->table(), sync.lo(), sync.hi());
  TrainStep step(cfg, grid, *model, opt, sync);
  KnownLengthPairs data(cfg.model);
  for (uint64_t consumed : {uint64_t{0}, uint64_t{6}}) {
    const StepResult r = step.run(data, static_cast<int64_t>(consumed / 6), consumed, 0);
    double source = 0, target = 0;
    for (int g = static_cast<int>(consumed); g < static_cast<int>(consumed) + 6; ++g) {
      source += data.source(g);
      target += data.target(g);
    }
    EXPECT_EQ(r.flops, encdec_flops(cfg.model, source, target)) << "from sample " << consumed;
    EXPECT_LT(r.flops, encdec_flops_per_step(cfg.model, 6));  // padding is not counted
  }
}

TEST(DevicePeak, GpuTableByNameAndPrecision) {
  EXPECT_EQ(gpu_peak_tflops("NVIDIA H100 80GB HBM3", Precision::kBf16), 989);
  EXPECT_EQ(gpu_peak_tflops("NVIDIA H100 80GB HBM3", Precision::kFp32), 67);
  EXPECT_EQ(gpu_peak_tflops("NVIDIA H200", Precision::kBf16), 989);
  EXPECT_EQ(gpu_peak_tflops("NVIDIA H100 PCIe", Precision::kBf16), 756);
  EXPECT_EQ(gpu_peak_tflops("NVIDIA A100-SXM4-80GB", Precision::kBf16), 312);
  EXPECT_EQ(gpu_peak_tflops("NVIDIA A100-PCIE-40GB", Precision::kFp32), 19.5);
  EXPECT_EQ(gpu_peak_tflops("NVIDIA A10", Precision::kBf16), 125);  // not the A100's
  EXPECT_EQ(gpu_peak_tflops("NVIDIA L4", Precision::kFp32), 30.3);  // not the L40S's
  EXPECT_EQ(gpu_peak_tflops("NVIDIA L40S", Precision::kFp32), 91.6);
  EXPECT_EQ(gpu_peak_tflops("NVIDIA A10G", Precision::kBf16), 0);  // not in the table
  EXPECT_EQ(gpu_peak_tflops("Tesla V100-SXM2-16GB", Precision::kFp32), 0);
}

TEST(TrainingMetrics, ANegativePeakIsRefused) {
  TempDir tmp;
  const RunResult r = train(tmp / "run", "runtime.peak_tflops=-1");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("runtime.peak_tflops"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(tmp / "run/metrics.jsonl"));
}

// bench_train's JSON fields (numbers only).
std::map<std::string, double> bench_fields(const std::string& output) {
  std::map<std::string, double> out;
  const std::regex number("\"([a-z_]+)\": (-?[0-9][0-9.e+-]*)");
  for (std::sregex_iterator it(output.begin(), output.end(), number), end; it != end; ++it)
    out[(*it)[1]] = std::stod((*it)[2]);
  return out;
}

double relative(double a, double b) {
  return std::fabs(a - b) / std::fabs(b);
}

struct Pair {
  RunResult trainer, bench;
  std::vector<Record> records;
  std::map<std::string, double> bench_json;
};

// The same model (`model`: overrides of tiny.yaml) through the trainer (`steps` steps, a record
// every 2) and through bench_train (`steps` timed steps after 2 untimed).
Pair train_and_bench(const std::string& model, int steps, const std::string& extra) {
  TempDir tmp;
  Pair p;
  p.trainer = train(tmp / "run", "train.max_steps=" + std::to_string(steps) +
                                     " log.interval=2 train.eval_batches=1 " + model + extra);
  p.records = read_records(tmp / "run/metrics.jsonl");
  p.bench = run_command(testing::bench_train_binary() + " " + kTiny + " " + model + " --steps " +
                        std::to_string(steps) + " --warmup 2");
  p.bench_json = bench_fields(p.bench.output);
  return p;
}

// What does not depend on timing, on two model sizes: the FLOPs per token are the same (one
// formula; bench_train prints them rounded), and the peak RSS grows alike from the smaller model
// to the larger (the trainer's process holds ~25 MiB more of its own: MPI, the data, the
// evaluator, at every size).
TEST(TrainingMetrics, AgreesWithBenchTrainOnFlopsAndMemory) {
  const std::string bench = testing::bench_train_binary();
  ASSERT_TRUE(fs::exists(bench)) << bench << " is not built";
  const std::string sizes[2] = {"model.d_model=128",
                                "model.d_model=256 model.n_layers=4 train.micro_batch=8"};
  double rss[2][2];  // [size][trainer, bench]
  for (int i = 0; i < 2; ++i) {
    const Pair p = train_and_bench(sizes[i], 2, " runtime.peak_tflops=1");
    ASSERT_EQ(p.trainer.exit_code, 0) << p.trainer.output;
    ASSERT_EQ(p.bench.exit_code, 0) << p.bench.output;
    ASSERT_FALSE(p.records.empty());
    std::istringstream words(sizes[i]);
    const std::vector<std::string> overrides{std::istream_iterator<std::string>(words), {}};
    const Config cfg = load_config(kTiny, overrides);
    const double fpt = flops_per_token(cfg, printed_parameters(p.trainer.output));
    EXPECT_EQ(number(p.records.back(), "flops_per_token"), fpt) << sizes[i];
    EXPECT_NEAR(p.bench_json.at("flops_per_token"), fpt, 0.5) << sizes[i];
    rss[i][0] = number(p.records.back(), "peak_rss_mb");
    rss[i][1] = p.bench_json.at("peak_rss_mb");
  }
  const double trainer_growth = rss[1][0] - rss[0][0], bench_growth = rss[1][1] - rss[0][1];
  EXPECT_GT(bench_growth, 30.0);  // the larger model's arenas
  EXPECT_LE(relative(trainer_growth, bench_growth), 0.1)
      << "peak RSS: trainer " << rss[0][0] << " -> " << rss[1][0] << " MiB, bench_train "
      << rss[0][1] << " -> " << rss[1][1] << " MiB";
}

// The timed figures: the measured peak and the MFU within 10% on the same model. Timings move
// on a shared machine, so the pair is measured up to three times and one agreeing pair passes;
// when none agrees and the machine was busy (two back-to-back sgemm probes of this process
// differed by more than 5%), the test says so and skips instead of failing.
TEST(TrainingMetrics, AgreesWithBenchTrainOnPeakAndMfu) {
  const std::string bench = testing::bench_train_binary();
  ASSERT_TRUE(fs::exists(bench)) << bench << " is not built";
  std::string report;
  bool agreed = false, busy = false;
  for (int attempt = 1; attempt <= 3 && !agreed; ++attempt) {
    const double probe0 = peak_sgemm_flops(2, 3), probe1 = peak_sgemm_flops(2, 3);
    const double noise = relative(probe0, probe1);
    busy = busy || noise > 0.05;
    const Pair p = train_and_bench("", 10, "");
    ASSERT_EQ(p.trainer.exit_code, 0) << p.trainer.output;
    ASSERT_EQ(p.bench.exit_code, 0) << p.bench.output;
    // The median MFU of the records of steps 3-4, ..., 9-10 (steps 1 and 2 warm up).
    std::vector<double> mfu;
    for (const Record& r : p.records)
      if (number(r, "step") >= 4) mfu.push_back(number(r, "mfu"));
    ASSERT_EQ(mfu.size(), 4u);
    std::sort(mfu.begin(), mfu.end());
    const double median = (mfu[1] + mfu[2]) / 2;
    const double peak = printed_peak(p.trainer.output);
    const double bench_peak = p.bench_json.at("peak_sgemm_gflops") * 1e9;
    const double bench_mfu = p.bench_json.at("mfu");
    char line[256];
    std::snprintf(line, sizeof line,
                  "attempt %d: peak %.1f vs %.1f GFLOP/s, MFU %.4f vs %.4f (trainer vs "
                  "bench_train); back-to-back probes differed by %.1f%%\n",
                  attempt, peak * 1e-9, bench_peak * 1e-9, median, bench_mfu, 100 * noise);
    report += line;
    agreed = relative(peak, bench_peak) <= 0.1 && relative(median, bench_mfu) <= 0.1;
  }
  std::fprintf(stderr, "%s", report.c_str());
  if (!agreed && busy)
    GTEST_SKIP() << "the machine is too busy to compare timings within 10%:\n" << report;
  EXPECT_TRUE(agreed) << report;
}

TEST(TrainingMetrics, TensorBoardHoldsEveryNumericFieldAcrossAResume) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const std::string common =
      " train.max_steps=6 log.interval=2 train.eval_interval=2 train.eval_batches=2 "
      "log.tensorboard=tb "
      "checkpoint.interval=2 checkpoint.keep_last=5";
  RunResult r = train(run, common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  // As if the run had been killed after the record of step 6 but before its checkpoint: it
  // resumes from step 4 and trains steps 5 and 6 again, with other timings.
  fs::remove(run + "/checkpoints/step_00000006.h5");
  r = train(run, common);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  ASSERT_NE(r.output.find("resumed from " + run + "/checkpoints/step_00000004.h5"),
            std::string::npos)
      << r.output;
  ASSERT_EQ(std::distance(fs::directory_iterator(run + "/tb"), fs::directory_iterator()), 2);
  const std::string missing = testing::tensorboard_missing();
  if (!missing.empty()) GTEST_SKIP() << missing;

  const testing::TbRead tb = testing::read_tensorboard(run + "/tb");
  ASSERT_EQ(tb.run.exit_code, 0) << tb.run.output;
  const std::vector<Record> records = read_records(run + "/metrics.jsonl");
  ASSERT_EQ(records.size(), 5u);  // steps 1, 2, 4, then 5 (a resumed run's first) and 6
  size_t fields = 0;
  for (const Record& rec : records) {
    const int64_t step = std::stoll(*field(rec, "step"));
    for (const auto& [key, text] : rec) {
      if (key == "step") continue;
      const auto it = tb.scalars.find(key);
      ASSERT_NE(it, tb.scalars.end()) << key << "\n" << tb.run.output;
      const auto at = std::find_if(it->second.begin(), it->second.end(),
                                   [&](const auto& p) { return p.first == step; });
      ASSERT_NE(at, it->second.end()) << key << " at step " << step;
      EXPECT_EQ(at->second, static_cast<double>(std::strtof(text.c_str(), nullptr)))
          << key << " at step " << step;
      ++fields;
    }
  }
  // Nothing else: the first run's step 6 was replaced by the resumed run's.
  size_t scalars = 0;
  for (const auto& [key, points] : tb.scalars) scalars += points.size();
  EXPECT_EQ(scalars, fields) << tb.run.output;
  for (const char* key : {"train_loss", "lr", "grad_norm", "tokens_per_s", "mfu", "flops_per_token",
                          "peak_rss_mb", "elapsed_s", "val_loss", "task_accuracy"})
    EXPECT_TRUE(tb.scalars.count(key)) << key;
}

// bench_train runs on the backend of runtime.device with the run's peak: a cuda device that is
// missing is refused with the trainer's message (exit 2), and runtime.peak_tflops is MFU's
// denominator as in the trainer.
TEST(TrainingMetrics, BenchTrainTakesTheRunsDeviceAndPeak) {
  const std::string bench = testing::bench_train_binary();
  ASSERT_TRUE(fs::exists(bench)) << bench << " is not built";
  const std::string quick = " model.d_model=32 model.n_heads=2 --steps 2 --warmup 1";
  const std::string why = cuda_unavailable();
  if (!why.empty()) {
    const RunResult r = run_command(bench + " " + kTiny + " runtime.device=cuda" + quick);
    EXPECT_EQ(r.exit_code, 2) << r.output;
    EXPECT_EQ(
        testing::count_occurrences(r.output, "bench_train: error: runtime.device=cuda: " + why), 1)
        << r.output;
  }
  const RunResult r =
      run_command(bench + " " + kTiny + " runtime.device=cpu runtime.peak_tflops=0.002" + quick);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("GFLOP/s peak (runtime.peak_tflops)"), std::string::npos) << r.output;
  const std::map<std::string, double> json = bench_fields(r.output);
  ASSERT_TRUE(json.count("mfu") && json.count("achieved_gflops") && json.count("peak_sgemm_gflops"))
      << r.output;
  EXPECT_EQ(json.at("peak_sgemm_gflops"), 2.0);
  EXPECT_NEAR(json.at("mfu"), json.at("achieved_gflops") / 2.0, 1e-3) << r.output;
}

}  // namespace
}  // namespace ph
