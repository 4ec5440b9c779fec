// Two ranks, on the properties a tensor- or data-parallel layout must keep bit for bit:
// - replicated parameters (LayerNorms, positions, row-parallel biases) stay bitwise equal on
//   the ranks of a tensor-parallel group after 20 training steps of the GPT through the
//   trainer's own step (the encoder-decoder: tests/test_mpi_encdec.cpp);
// - data-parallel gradient sync overlapped with backward (buckets fired as backward finishes
//   each range) gives gradients bitwise equal to the sync after backward.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstring>
#include <vector>

#include "parallel/agreement.h"
#include "parallel/grad_sync.h"
#include "tests/model_batch.h"
#include "tests/model_parallel_check.h"
#include "tests/test_util.h"
#include "trainer/data_source.h"
#include "trainer/model_factory.h"
#include "trainer/optimizer.h"
#include "trainer/train_step.h"

namespace ph {
namespace {

// The shared run directory of the ranks (rank 0's temporary directory).
std::string shared_dir(const testing::TempDir& tmp) {
  std::string dir = tmp / "run";
  int n = static_cast<int>(dir.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  dir.resize(static_cast<size_t>(n));
  MPI_Bcast(dir.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return dir;
}

TEST(TensorParallel, GptReplicatedParametersStayBitwiseEqualOver20Steps) {
  testing::TempDir tmp;
  ModelConfig mc = testing::parallel_test_model();
  Config cfg = test::task_run(mc, shared_dir(tmp));
  cfg.parallel.tp = 2;
  cfg.train.global_batch = 8;  // two micro-batches
  cfg.train.max_steps = 20;
  cfg.optim.warmup_steps = 2;
  cfg.optim.decay_1d = true;  // the replicated parameters decay too
  validate_config(cfg);
  const ProcessGrid grid = make_grid(2);
  ASSERT_EQ(grid.tp, 2);
  agree(*grid.world_comm, [&] {
    if (grid.rank == 0) generate_task_data(cfg);
  });
  DataSource data = open_data(cfg, true);
  std::unique_ptr<Model> model =
      make_model(test::cpu(), cfg, grid, grid.tp_comm.get(), cfg.train.micro_batch);
  model->initialize(cfg.train.seed);
  GradSync sync(test::cpu(), grid.dp_comm.get(), model->grads(), model->arena_size(),
                model->arena_capacity(), GradSync::Options{});
  AdamW opt(test::cpu(), cfg.optim, model->table(), sync.lo(), sync.hi());
  TrainStep step(cfg, grid, *model, opt, sync);
  uint64_t consumed = 0;
  for (int s = 0; s < 20; ++s) {
    ASSERT_TRUE(step.run(*data.train, s, consumed, s).applied);
    consumed += static_cast<uint64_t>(step.global_batch());
  }
  EXPECT_GE(testing::expect_replicated_equal(*model, *grid.tp_comm), 10);
  // Not vacuous: training moved the replicated LayerNorm weights away from 1.
  std::vector<float> host(model->arena_capacity());
  model->download_params(host.data());
  EXPECT_NE(host[model->table()[model->table().find("h.1.ln2.weight")].offset], 1.0f);
}

TEST(DataParallel, OverlappedSyncEqualsSyncAfterBackwardBitwise) {
  const ProcessGrid grid = make_grid(1);
  ASSERT_EQ(grid.dp, 2);
  ModelConfig mc = testing::parallel_test_model();  // tied embedding: fired after both users
  std::vector<std::vector<float>> grads;
  for (bool overlap : {true, false}) {
    Gpt model(test::cpu(), mc, test::setup(2));
    model.initialize(3);
    GradSync::Options o;
    o.dp = grid.dp;
    o.dp_rank = grid.dp_rank;
    o.overlap = overlap;
    GradSync sync(test::cpu(), grid.dp_comm.get(), model.grads(), model.arena_size(),
                  model.arena_capacity(), o);
    EXPECT_EQ(sync.overlaps(), overlap);
    model.zero_grads();
    for (int a = 0; a < 2; ++a) {  // two micro-batches; the last one overlaps
      test::ModelBatch mb = test::model_batch(2, mc.seq_len, mc.vocab_size, 7 + a);
      mb.batch.sample0 = (a * grid.dp + grid.dp_rank) * 2;
      if (a == 1) model.set_grad_hook(sync.ready_hook());
      model.forward_backward(mb.batch, 0.01f, mb.dropout, nullptr);
      model.set_grad_hook({});
    }
    const GradView v = sync.finish();
    EXPECT_EQ(v.lo, 0u);
    EXPECT_EQ(v.hi, model.arena_size());
    grads.emplace_back(model.grads(), model.grads() + model.arena_size());
  }
  EXPECT_EQ(0, std::memcmp(grads[0].data(), grads[1].data(), grads[0].size() * sizeof(float)));
  // The sum differs from this rank's own gradient: the check is not vacuous.
  double sq = 0.0;
  for (float g : grads[0]) sq += static_cast<double>(g) * g;
  EXPECT_GT(sq, 0.0);
}

}  // namespace
}  // namespace ph
