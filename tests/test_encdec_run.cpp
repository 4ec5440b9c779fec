// The encoder-decoder through the binary: configs/encdec-tiny.yaml learns its synthetic task
// (held-out exact match with greedy decoding and with beam 4 through `polyhead translate`),
// metrics.jsonl holds val_loss, bleu and task_accuracy, a resumed run continues the same
// curve bit for bit, and each bad input of the family gets its message.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "test_util.h"

namespace ph {
namespace {

using testing::count_occurrences;
using testing::read_file;
using testing::run_command;
using testing::TempDir;

const std::string kBin = testing::polyhead_binary();
const std::string kConfigs = testing::source_dir() + "/configs/";

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  size_t at = 0;
  while (at < text.size()) {
    const size_t nl = text.find('\n', at);
    const size_t end = nl == std::string::npos ? text.size() : nl;
    out.push_back(text.substr(at, end - at));
    at = end + 1;
  }
  return out;
}

// The fraction of lines of `got` equal to those of `want`.
double exact_match(const std::vector<std::string>& got, const std::vector<std::string>& want) {
  EXPECT_EQ(got.size(), want.size());
  size_t same = 0;
  for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) same += got[i] == want[i] ? 1 : 0;
  return want.empty() ? 0.0 : static_cast<double>(same) / static_cast<double>(want.size());
}

void expect_bad_input(const std::string& args, const std::string& needle) {
  const testing::RunResult r = run_command(kBin + " " + args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, needle), 1) << args << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << args << "\n" << r.output;
}

TEST(EncDecRun, TinyConfigLearnsToTranslate) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const auto start = std::chrono::steady_clock::now();
  const testing::RunResult r = run_command("OMP_NUM_THREADS=2 " + kBin + " train " + kConfigs +
                                           "encdec-tiny.yaml run.dir=" + run);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("encdec-tiny trained in %.0f s\n", seconds);
  EXPECT_NE(r.output.find("BLEU"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("[ok]"), std::string::npos) << r.output;  // the samples at the end
  // The last metrics record carries the evaluation.
  const std::vector<std::string> records = lines_of(read_file(run + "/metrics.jsonl"));
  ASSERT_FALSE(records.empty());
  for (const char* key : {"\"val_loss\"", "\"bleu\"", "\"task_accuracy\""})
    EXPECT_NE(records.back().find(key), std::string::npos) << records.back();

  // Held-out numbers through `polyhead translate`, greedy and beam 4.
  std::vector<std::string> sources = lines_of(read_file(run + "/data/val.src"));
  std::vector<std::string> references = lines_of(read_file(run + "/data/val.tgt"));
  ASSERT_GE(sources.size(), 500u);
  sources.resize(500);
  references.resize(500);
  std::ofstream(tmp / "src.txt") << [&] {
    std::string s;
    for (const std::string& l : sources) s += l + "\n";
    return s;
  }();
  std::string ckpt;
  for (const auto& e : std::filesystem::directory_iterator(run + "/checkpoints"))
    if (e.path().extension() == ".h5" && e.path().string() > ckpt) ckpt = e.path().string();
  for (const int beam : {1, 4}) {
    const testing::RunResult t =
        run_command(kBin + " translate --checkpoint " + ckpt + " --input " + tmp / "src.txt" +
                    " --beam " + std::to_string(beam) + " 2>/dev/null");
    ASSERT_EQ(t.exit_code, 0) << t.output;
    const double em = exact_match(lines_of(t.output), references);
    std::printf("beam %d: %.1f%% exact match on 500 held-out numbers\n", beam, 100.0 * em);
    EXPECT_GE(em, 0.95) << "beam " << beam;
  }
}

// A small encoder-decoder on the task, quick enough to run several times.
std::string quick(const std::string& run, const std::string& extra = "") {
  return "model.type=encdec model.vocab_size=384 model.n_layers=1 model.d_model=32 "
         "model.n_heads=2 model.src_seq_len=8 model.seq_len=16 model.dropout.resid=0.1 "
         "data.task_digits=5 data.task_train_problems=2000 data.task_val_problems=100 "
         "train.micro_batch=8 train.eval_interval=4 train.eval_batches=2 sample.count=2 "
         "optim.warmup_steps=1 optim.schedule=constant checkpoint.interval=4 log.interval=1 "
         "run.dir=" +
         run + " " + extra;
}

TEST(EncDecRun, ResumeContinuesTheSameCurve) {
  TempDir tmp;
  const std::string cfg = kConfigs + "encdec-tiny.yaml ";
  const testing::RunResult whole =
      run_command(kBin + " train " + cfg + quick(tmp / "whole", "train.max_steps=8"));
  ASSERT_EQ(whole.exit_code, 0) << whole.output;
  const testing::RunResult first =
      run_command(kBin + " train " + cfg + quick(tmp / "parts", "train.max_steps=4"));
  ASSERT_EQ(first.exit_code, 0) << first.output;
  const testing::RunResult second =
      run_command(kBin + " train " + cfg + quick(tmp / "parts", "train.max_steps=8"));
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("resumed from"), std::string::npos) << second.output;
  // Every step's record (log.interval=1) is the same but for the timing and memory fields, byte
  // for byte.
  const auto records = [](const std::string& text) {
    std::string out;
    for (std::string l : lines_of(text)) {
      for (const char* key : {"\"tokens_per_s\"", "\"mfu\"", "\"peak_rss_mb\"", "\"elapsed_s\""}) {
        const size_t at = l.find(key);
        if (at != std::string::npos) l.erase(at, l.find(',', at) + 2 - at);
      }
      out += l + "\n";
    }
    return out;
  };
  const std::string whole_records = records(read_file(tmp / "whole/metrics.jsonl"));
  EXPECT_EQ(count_occurrences(whole_records, "\"val_loss\""), 2) << whole_records;
  EXPECT_EQ(whole_records, records(read_file(tmp / "parts/metrics.jsonl")));
}

// BLEU is a metric to follow: best.h5 is the checkpoint of the best BLEU, and says so.
TEST(EncDecRun, KeepBestFollowsBleu) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const testing::RunResult r = run_command(
      kBin + " train " + kConfigs + "encdec-tiny.yaml " +
      quick(run,
            "train.max_steps=8 train.early_stopping_metric=bleu checkpoint.keep_best=true "
            "train.early_stopping=5"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_GE(
      count_occurrences(r.output, "saved best checkpoint " + run + "/checkpoints/best.h5 (bleu "),
      1)
      << r.output;
  const testing::RunResult inspect = run_command(kBin + " inspect " + run + "/checkpoints/best.h5");
  ASSERT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("best evaluation   metric=bleu value="), std::string::npos)
      << inspect.output;
}

TEST(EncDecRun, BadInput) {
  TempDir tmp;
  const std::string cfg = kConfigs + "encdec-tiny.yaml ";
  expect_bad_input("train " + cfg + "data.task=addition",
                   "data.task: addition is not a synthetic task of model.type encdec (gpt: "
                   "addition; encdec: translation; bert: copies or addition)");
  expect_bad_input("train " + kConfigs + "tiny.yaml data.task=translation",
                   "data.task: translation is not a synthetic task of model.type gpt (gpt: "
                   "addition; encdec: translation; bert: copies or addition)");
  expect_bad_input("train " + cfg + "data.task_digits=12",
                   "data.task_digits: the translation task writes numbers of at most 9 digits, "
                   "got 12");
  expect_bad_input("train " + cfg + "data.bos_token=''",
                   "data.bos_token: an encdec model needs it (padding, decoder start, end)");
  expect_bad_input("translate", "translate: missing --checkpoint PATH");
  expect_bad_input("translate --checkpoint x.h5 --beam 2 --n-best 3",
                   "translate: --n-best 3 exceeds --beam 2");
  expect_bad_input("translate --checkpoint x.h5 --beam 0",
                   "translate: --beam expects an integer in [1, 1024], got '0'");
  // A GPT checkpoint cannot translate.
  const testing::RunResult gpt =
      run_command(kBin + " train " + kConfigs +
                  "tiny.yaml model.n_layers=1 model.d_model=16 model.n_heads=2 train.max_steps=1 "
                  "sample.count=0 optim.warmup_steps=1 data.task_train_problems=100 "
                  "data.task_val_problems=10 run.dir=" +
                  tmp / "gpt");
  ASSERT_EQ(gpt.exit_code, 0) << gpt.output;
  const std::string gpt_ckpt = tmp / "gpt/checkpoints/step_00000001.h5";
  expect_bad_input("translate --checkpoint " + gpt_ckpt,
                   "translate: " + gpt_ckpt +
                       " holds a gpt model; translate needs an encoder-decoder (model.type "
                       "encdec)");
  // An unreadable input file of an encoder-decoder checkpoint; and sample, which is the GPT's.
  const testing::RunResult ed =
      run_command(kBin + " train " + cfg + quick(tmp / "ed", "train.max_steps=1"));
  ASSERT_EQ(ed.exit_code, 0) << ed.output;
  expect_bad_input("sample --checkpoint " + tmp / "ed/checkpoints/step_00000001.h5",
                   "sample: " + tmp / "ed/checkpoints/step_00000001.h5" +
                       " holds a model of type encdec; sample needs a gpt");
  expect_bad_input("translate --checkpoint " + tmp / "ed/checkpoints/step_00000001.h5" +
                       " --input " + tmp / "none.txt",
                   "translate: cannot open --input '" + tmp / "none.txt" + "'");
}

}  // namespace
}  // namespace ph
