// train.early_stopping, train.early_stopping_metric and checkpoint.keep_best: the best-value
// bookkeeping (BestEval), the config's messages, and training runs that stop early, keep
// best.h5, and stop at the same step when resumed from a checkpoint taken before the stop.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "model/gpt.h"
#include "parallel/grid.h"
#include "test_util.h"
#include "tests/model_batch.h"
#include "tests/test_backend.h"
#include "trainer/best_eval.h"
#include "trainer/checkpointing.h"
#include "trainer/trainer.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

TEST(BestEval, LowerLossAndHigherScoresImproveNaNNever) {
  BestEval loss(EvalMetric::kValLoss);
  EXPECT_FALSE(loss.update(std::numeric_limits<double>::quiet_NaN(), 1));
  EXPECT_FALSE(loss.has_best());
  EXPECT_EQ(loss.stale(), 1);
  EXPECT_TRUE(loss.update(2.0, 2));
  EXPECT_EQ(loss.stale(), 0);
  EXPECT_FALSE(loss.update(2.0, 3));  // equal is no improvement
  EXPECT_FALSE(loss.update(2.5, 4));
  EXPECT_EQ(loss.stale(), 2);
  EXPECT_TRUE(loss.update(1.5, 5));
  EXPECT_EQ(loss.step(), 5);
  EXPECT_EQ(loss.value(), 1.5);
  EXPECT_EQ(loss.stale(), 0);

  BestEval bleu(EvalMetric::kBleu);
  EXPECT_TRUE(bleu.update(0.0, 1));  // the first finite value is the best so far
  EXPECT_TRUE(bleu.update(10.0, 2));
  EXPECT_FALSE(bleu.update(9.0, 3));
  EXPECT_FALSE(bleu.update(std::numeric_limits<double>::infinity(), 4));
  EXPECT_EQ(bleu.step(), 2);
  EXPECT_EQ(bleu.stale(), 2);
}

TEST(BestEval, TheCheckpointTextRoundTripsEveryBit) {
  BestEval b(EvalMetric::kTaskAccuracy);
  EXPECT_EQ(b.text(), "");
  const double v = 0.1 + 0.2;  // not a short decimal
  b.update(v, 40);
  b.update(0.25, 50);
  EXPECT_EQ(b.text(), "metric=task_accuracy value=0.30000000000000004 step=40 stale=1");
  std::string note;
  const BestEval r = BestEval::from_text(b.text(), EvalMetric::kTaskAccuracy, "C", &note);
  EXPECT_EQ(note, "");
  const double got = r.value();
  EXPECT_EQ(std::memcmp(&v, &got, sizeof v), 0);
  EXPECT_EQ(r.step(), 40);
  EXPECT_EQ(r.stale(), 1);
  // An evaluation without a value yet (NaN) is still counted.
  BestEval n(EvalMetric::kValLoss);
  n.update(std::nan(""), 10);
  const BestEval rn = BestEval::from_text(n.text(), EvalMetric::kValLoss, "C", &note);
  EXPECT_FALSE(rn.has_best());
  EXPECT_EQ(rn.stale(), 1);
}

TEST(BestEval, AnotherMetricStartsAfreshAndDamageIsNamed) {
  BestEval b(EvalMetric::kBleu);
  b.update(20.0, 8);
  std::string note;
  const BestEval r = BestEval::from_text(b.text(), EvalMetric::kValLoss, "ck.h5", &note);
  EXPECT_FALSE(r.has_best());
  EXPECT_EQ(r.stale(), 0);
  EXPECT_EQ(note,
            "checkpoint ck.h5 followed the best bleu; this run follows val_loss "
            "(train.early_stopping_metric), from its next evaluation on");
  for (const std::string bad :
       {"metric=bleu value=1 step=2", "metric=wer value=1 step=2 stale=0",
        "metric=bleu value=1 step=2 stale=0 extra", "metric=bleu value=1 step=-2 stale=0"}) {
    try {
      BestEval::from_text(bad, EvalMetric::kBleu, "ck.h5", &note);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()),
                "checkpoint ck.h5: its best_eval attribute is malformed: '" + bad + "'");
    }
  }
}

std::string parse_error(const std::string& yaml, const std::vector<std::string>& overrides) {
  try {
    parse_config(yaml, overrides, "test.yaml");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(EarlyStoppingConfig, EachBadCombinationHasOneMessage) {
  EXPECT_EQ(
      parse_error("", {"train.early_stopping_metric=bleu"}),
      "command line: train.early_stopping_metric: bleu is not a metric of this run (model.type "
      "gpt on the synthetic task reports val_loss, task_accuracy)");
  EXPECT_EQ(parse_error("data: {train: [a.bin], val: [b.bin]}\n",
                        {"train.early_stopping_metric=task_accuracy"}),
            "command line: train.early_stopping_metric: task_accuracy is not a metric of this "
            "run (model.type gpt on data.train reports val_loss)");
  EXPECT_EQ(parse_error("model: {type: encdec}\n", {"train.early_stopping_metric=mlm_accuracy"}),
            "command line: train.early_stopping_metric: mlm_accuracy is not a metric of this run "
            "(model.type encdec on the synthetic task reports val_loss, bleu, task_accuracy)");
  EXPECT_EQ(parse_error("model: {type: bert}\n", {"train.early_stopping_metric=task_accuracy"}),
            "command line: train.early_stopping_metric: task_accuracy is not a metric of this "
            "run (model.type bert on the synthetic task reports val_loss, mlm_accuracy)");
  EXPECT_EQ(parse_error("data: {train: [a.bin]}\n", {"train.early_stopping=3"}),
            "command line: train.early_stopping: needs validation data to follow val_loss "
            "(data.val is empty)");
  EXPECT_EQ(parse_error("data: {train: [a.bin]}\n", {"checkpoint.keep_best=true"}),
            "command line: checkpoint.keep_best: needs validation data to follow val_loss "
            "(data.val is empty)");
  EXPECT_EQ(parse_error("train: {eval_interval: 0}\n", {"train.early_stopping=2"}),
            "command line: train.early_stopping: needs evaluations during training; "
            "train.eval_interval is 0 (only at the end)");
  EXPECT_EQ(parse_error("", {"train.early_stopping=-1"}),
            "command line: train.early_stopping: must be >= 0, got -1");
  EXPECT_EQ(parse_error("", {"train.early_stopping_metric=wer"}),
            "command line: train.early_stopping_metric: must be one of {val_loss, bleu, "
            "task_accuracy, mlm_accuracy}, got 'wer'");
  // The synthetic task's runs have validation data; an encdec model has BLEU.
  EXPECT_EQ(parse_error("", {"train.early_stopping=2", "checkpoint.keep_best=true",
                             "train.early_stopping_metric=task_accuracy"}),
            "");
  EXPECT_EQ(parse_error("model: {type: encdec}\n", {"train.early_stopping_metric=bleu"}), "");
}

// A small GPT on 2-digit addition: no held-out problem is solved in its first few steps, so
// task_accuracy stays 0 and early stopping follows a plateau.
Config plateau_run(const std::string& dir) {
  Config c;
  c.model.n_layers = 1;
  c.model.d_model = 32;
  c.model.n_heads = 2;
  c.model.seq_len = 20;
  c.model.dropout_resid = 0.1f;
  c.train.micro_batch = 4;
  c.train.max_steps = 20;
  c.train.eval_interval = 2;
  c.train.eval_batches = 2;
  c.train.early_stopping = 2;
  c.train.early_stopping_metric = EvalMetric::kTaskAccuracy;
  c.optim.warmup_steps = 2;
  c.data.task_digits = 2;
  c.data.task_train_problems = 2000;
  c.data.task_val_problems = 100;
  c.checkpoint.interval = 2;
  c.checkpoint.keep_last = 20;
  c.checkpoint.keep_best = true;
  c.log.interval = 100;
  c.sample.count = 0;
  c.run.dir = dir;
  validate_config(c);
  return c;
}

std::vector<float> model_values(const std::string& path, const Config& cfg) {
  Gpt model(ph::test::cpu(), cfg.model, ph::test::setup(1));
  const ProcessGrid grid = make_grid(1);
  load_training_checkpoint(path, cfg, model, nullptr, grid);
  return {model.params(), model.params() + model.arena_size()};
}

TEST(EarlyStopping, AFlatMetricStopsTheRunAndTheFirstEvaluationIsTheBest) {
  TempDir tmp;
  const Config a = plateau_run(tmp / "a");
  const TrainSummary s = train(a);
  // Evaluations at 2 (the best: the first), 4 and 6 (no improvement): stop at 6.
  EXPECT_TRUE(s.stopped_early);
  EXPECT_EQ(s.steps_done, 6);
  EXPECT_EQ(s.best_step, 2);
  EXPECT_EQ(s.best_value, 0.0);
  const std::string ckpts = a.run.dir + "/checkpoints";
  EXPECT_EQ(s.best_checkpoint, ckpts + "/best.h5");
  EXPECT_EQ(latest_checkpoint(ckpts), ckpts + "/" + checkpoint_file_name(6));
  // best.h5 is the model of step 2, bit for bit, and says so.
  const CheckpointMeta meta = read_checkpoint_meta(s.best_checkpoint, MPI_COMM_WORLD);
  EXPECT_EQ(meta.step, 2);
  EXPECT_EQ(meta.best_eval, "metric=task_accuracy value=0 step=2 stale=0");
  EXPECT_EQ(model_values(s.best_checkpoint, a),
            model_values(ckpts + "/" + checkpoint_file_name(2), a));
  EXPECT_EQ(read_checkpoint_meta(ckpts + "/" + checkpoint_file_name(6), MPI_COMM_WORLD).best_eval,
            "metric=task_accuracy value=0 step=2 stale=2");

  // Resumed from step 4 (one stale evaluation), the run stops at step 6 again, with the same
  // model: the count travels in the checkpoint.
  Config b = plateau_run(tmp / "b");
  b.checkpoint.resume = ckpts + "/" + checkpoint_file_name(4);
  const TrainSummary sb = train(b);
  EXPECT_TRUE(sb.stopped_early);
  EXPECT_EQ(sb.steps_done, 6);
  EXPECT_EQ(model_values(sb.last_checkpoint, b), model_values(ckpts + "/step_00000006.h5", a));
  EXPECT_FALSE(fs::exists(b.run.dir + "/checkpoints/best.h5"));  // no new best after step 4

  // Resumed where it stopped: nothing to train; with more patience it goes on.
  const TrainSummary again = train(a);
  EXPECT_TRUE(again.stopped_early);
  EXPECT_EQ(again.steps_done, 6);
  Config patient = a;
  patient.train.early_stopping = 4;
  const TrainSummary more = train(patient);
  EXPECT_TRUE(more.stopped_early);
  EXPECT_EQ(more.steps_done, 10);
}

TEST(EarlyStopping, AnImprovingLossKeepsTheLatestEvaluationAsTheBest) {
  TempDir tmp;
  Config c = plateau_run(tmp / "a");
  c.train.early_stopping_metric = EvalMetric::kValLoss;
  c.train.max_steps = 8;
  c.optim.lr = 3e-3f;
  const TrainSummary s = train(c);
  EXPECT_FALSE(s.stopped_early);
  EXPECT_EQ(s.steps_done, 8);
  EXPECT_EQ(s.best_step, 8);
  EXPECT_TRUE(std::isfinite(s.best_value));
  EXPECT_EQ(s.best_value, s.final_val_loss);
  const std::string ckpts = c.run.dir + "/checkpoints";
  EXPECT_EQ(read_checkpoint_meta(ckpts + "/best.h5", MPI_COMM_WORLD).step, 8);
  EXPECT_EQ(model_values(ckpts + "/best.h5", c), model_values(s.last_checkpoint, c));
}

}  // namespace
}  // namespace ph
