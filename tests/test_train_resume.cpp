// Checkpoints in training: resuming is bit-exact (2N steps == N, stop, resume N), a
// checkpoint of another architecture or a damaged one is refused without touching good data.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <filesystem>
#include <vector>

#include "io/checkpoint.h"
#include "model/gpt.h"
#include "parallel/grid.h"
#include "test_util.h"
#include "tests/model_batch.h"
#include "tests/test_backend.h"
#include "trainer/checkpointing.h"
#include "trainer/trainer.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

Config small_run(const std::string& dir) {
  Config c;
  c.model.n_layers = 2;
  c.model.d_model = 32;
  c.model.n_heads = 2;
  c.model.seq_len = 20;
  c.model.dropout_embed = 0.1f;
  c.model.dropout_attn = 0.1f;
  c.model.dropout_resid = 0.1f;
  c.train.micro_batch = 4;
  c.train.global_batch = 8;  // two micro-batches accumulated
  c.train.max_steps = 12;
  c.train.eval_interval = 6;
  c.train.eval_batches = 2;
  c.optim.warmup_steps = 3;
  c.data.task_digits = 2;
  c.data.task_train_problems = 3000;
  c.data.task_val_problems = 100;
  c.checkpoint.interval = 6;
  c.checkpoint.keep_last = 10;
  c.log.interval = 100;
  c.sample.count = 0;
  c.run.dir = dir;
  validate_config(c);
  return c;
}

// Every /model and /optim tensor of a checkpoint, concatenated.
std::vector<float> checkpoint_values(const std::string& path, const Config& cfg) {
  Gpt model(ph::test::cpu(), cfg.model, ph::test::setup(1));
  AdamW opt(ph::test::cpu(), cfg.optim, model.table());
  const ProcessGrid grid = make_grid(1);
  load_training_checkpoint(path, cfg, model, &opt, grid);
  std::vector<float> all(model.params(), model.params() + model.arena_size());
  all.insert(all.end(), opt.m(), opt.m() + opt.size());
  all.insert(all.end(), opt.v(), opt.v() + opt.size());
  return all;
}

TEST(Resume, StopAndResumeIsBitExact) {
  TempDir tmp;
  // A: 12 steps uninterrupted (checkpoints at 6 and 12).
  const Config a = small_run(tmp / "a");
  const TrainSummary sa = train(a);
  ASSERT_EQ(sa.steps_done, 12);
  // B: starts from A's step-6 checkpoint in a run of its own and trains the last 6 steps.
  Config b = small_run(tmp / "b");
  b.checkpoint.resume = a.run.dir + "/checkpoints/" + checkpoint_file_name(6);
  const TrainSummary sb = train(b);
  ASSERT_EQ(sb.steps_done, 12);
  const std::vector<float> va = checkpoint_values(sa.last_checkpoint, a);
  const std::vector<float> vb = checkpoint_values(sb.last_checkpoint, b);
  ASSERT_EQ(va.size(), vb.size());
  EXPECT_EQ(0, std::memcmp(va.data(), vb.data(), va.size() * sizeof(float)))
      << "resumed parameters or optimizer state differ from the uninterrupted run";
  // And resuming really continued: the step-6 state differs from the final one.
  const std::vector<float> v6 = checkpoint_values(b.checkpoint.resume, a);
  EXPECT_NE(0, std::memcmp(va.data(), v6.data(), va.size() * sizeof(float)));
}

TEST(Resume, AutoResumeContinuesAndSkipsFinishedRuns) {
  TempDir tmp;
  Config c = small_run(tmp / "r");
  c.train.max_steps = 6;
  train(c);
  c.train.max_steps = 12;  // a longer run picks up the latest checkpoint (step 6)
  const TrainSummary s = train(c);
  EXPECT_EQ(s.steps_done, 12);
  EXPECT_EQ(latest_checkpoint(tmp / "r/checkpoints"),
            tmp / ("r/checkpoints/" + checkpoint_file_name(12)));
}

TEST(Resume, ArchitectureMismatchIsRefusedNamingEveryKey) {
  TempDir tmp;
  Config c = small_run(tmp / "m");
  c.train.max_steps = 3;
  c.checkpoint.interval = 0;
  const TrainSummary s = train(c);
  const std::string before = testing::read_file(s.last_checkpoint);
  Config other = c;
  other.model.d_model = 48;
  other.train.max_steps = 6;
  try {
    train(other);
    FAIL() << "expected the checkpoint to be refused";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "checkpoint " + s.last_checkpoint +
                                         " does not match the model of the config: "
                                         "model.d_model is 48 in the config but 32 in the "
                                         "checkpoint");
  }
  // Several keys, one of them a choice and one a flag: each is named with both values, and
  // settings that may change (the learning rate) are not.
  other = c;
  other.model.n_layers = 3;
  other.model.norm = Norm::kPost;
  other.model.tie_embeddings = false;
  other.optim.lr = 5e-4f;
  other.train.max_steps = 6;
  try {
    train(other);
    FAIL() << "expected the checkpoint to be refused";
  } catch (const InputError& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("model.n_layers is 3 in the config but 2 in the checkpoint, model.norm is "
                     "post in the config but pre in the checkpoint, model.tie_embeddings is "
                     "false in the config but true in the checkpoint"),
              std::string::npos)
        << m;
    EXPECT_EQ(m.find("lr"), std::string::npos) << m;
  }
  EXPECT_EQ(before, testing::read_file(s.last_checkpoint));  // untouched
}

// d_ff 0 means 4 · d_model: a config that spells the same width out is the same model.
TEST(Resume, TheSameFfnWidthWrittenOutIsTheSameModel) {
  TempDir tmp;
  Config c = small_run(tmp / "f");
  c.train.max_steps = 3;
  c.checkpoint.interval = 0;
  train(c);
  c.model.d_ff = 4 * c.model.d_model;
  c.train.max_steps = 4;
  EXPECT_EQ(train(c).steps_done, 4);
}

}  // namespace
}  // namespace ph
