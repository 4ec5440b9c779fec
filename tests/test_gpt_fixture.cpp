// GPT unchanged by the rebuilt model layer (tests/fixtures/gpt_fd280f6): one rank reproduces
// the curve recorded before the change, and a format-1 checkpoint written then loads and
// evaluates to the loss recorded then.
#include "tests/gpt_fixture.h"

#include "io/checkpoint.h"
#include "parallel/grid.h"
#include "tests/test_backend.h"
#include "trainer/checkpointing.h"
#include "trainer/data_source.h"
#include "trainer/evaluator.h"
#include "trainer/model_factory.h"

namespace ph {
namespace {

TEST(GptFixture, CurveMatchesTheRecordedOne) {
  testing::check_against_curve(1, "curve_dp1_tp1.txt");
}

TEST(GptFixture, Format1CheckpointEvaluatesToTheRecordedLoss) {
  const std::string path = testing::fixture_path("checkpoint_v1.h5");
  const CheckpointMeta meta = read_checkpoint_meta(path, MPI_COMM_WORLD);
  ASSERT_EQ(meta.format_version, 1);
  testing::TempDir tmp;
  // The embedded config, its synthetic task regenerated in a directory of the test.
  const Config cfg = parse_config(meta.config_yaml, {"run.dir=" + tmp / "run"}, path);
  generate_task_data(cfg);
  DataSource data = open_data(cfg, /*need_train=*/false);
  const ProcessGrid grid = make_grid(1);
  const std::unique_ptr<Model> model =
      make_model(test::cpu(), cfg, grid, nullptr, cfg.train.micro_batch);
  const TrainState st = load_training_checkpoint(path, cfg, *model, nullptr, grid);
  EXPECT_EQ(st.step, 20);
  EXPECT_EQ(st.optimizer_steps, 20);  // format 1: every step counted
  Evaluator ev(cfg.train.micro_batch, *model);
  const EvalResult r = ev.run(*model, *data.val, &*data.task, 0, grid);
  // Recorded: `polyhead eval --checkpoint checkpoint_v1.h5 --batches 0` printed
  // "loss 3.73384543 over 2548 tokens".
  EXPECT_EQ(r.tokens, 2548);
  EXPECT_NEAR(r.loss, 3.73384543, 1e-6 * 3.73384543);
}

}  // namespace
}  // namespace ph
