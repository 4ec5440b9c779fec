// BERT through the binary: configs/bert-tiny.yaml, as shipped, learns its synthetic task (a
// held-out mlm_accuracy of at least 0.90; README "BERT"), metrics.jsonl holds the masked-LM
// metrics, and `polyhead eval` reports them from the best checkpoint.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <string>

#include "test_util.h"

namespace ph {
namespace {

using testing::read_file;
using testing::run_command;
using testing::TempDir;

const std::string kBin = testing::polyhead_binary();
const std::string kConfig = testing::source_dir() + "/configs/bert-tiny.yaml";

// The number after "key": in a JSON line, or -1 when absent.
double field(const std::string& line, const std::string& key) {
  const size_t at = line.find("\"" + key + "\": ");
  return at == std::string::npos ? -1.0 : std::strtod(line.c_str() + at + key.size() + 4, nullptr);
}

TEST(BertRun, TinyConfigLearnsItsTaskAndEvalReportsTheMetrics) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const auto start = std::chrono::steady_clock::now();
  const testing::RunResult r =
      run_command("OMP_NUM_THREADS=2 " + kBin + " train " + kConfig + " run.dir=" + run);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::printf("bert-tiny trained in %.0f s\n", seconds);
  EXPECT_NE(r.output.find("masked tokens right"), std::string::npos) << r.output;
  const std::string metrics = read_file(run + "/metrics.jsonl");
  const std::string last = metrics.substr(metrics.rfind('\n', metrics.size() - 2) + 1);
  const double accuracy = field(last, "mlm_accuracy");
  std::printf("held-out mlm_accuracy %.4f\n", accuracy);
  EXPECT_GE(accuracy, 0.90) << last;
  EXPECT_GT(field(last, "mlm_loss"), 0.0) << last;
  EXPECT_EQ(field(last, "val_loss"), field(last, "mlm_loss")) << last;  // no sentence head

  const testing::RunResult e =
      run_command(kBin + " eval --checkpoint " + run + "/checkpoints/best.h5");
  ASSERT_EQ(e.exit_code, 0) << e.output;
  for (const char* key : {"val_loss ", "mlm_loss ", "mlm_accuracy "})
    EXPECT_NE(e.output.find(key), std::string::npos) << e.output;
  EXPECT_EQ(e.output.find("sentence_accuracy"), std::string::npos) << e.output;
}

}  // namespace
}  // namespace ph
