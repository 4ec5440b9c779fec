// Two ranks, on the properties a tensor- or data-parallel layout must keep bit for bit:
// - replicated parameters (LayerNorms, positions, row-parallel biases) stay bitwise equal on
//   the ranks of a tensor-parallel group after 20 training steps — the GPT through the
//   trainer's own step, and the encoder-decoder of the blocks (tests/seq2seq_blocks.h), whose
//   decoder layers each add a partial gradient of the encoder's output that is summed over the
//   group once;
// - the encoder-decoder on tp=2 computes the loss and gradients of one rank (1e-5);
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
#include "tests/seq2seq_blocks.h"
#include "tests/test_util.h"
#include "trainer/data_source.h"
#include "trainer/model_factory.h"
#include "trainer/optimizer.h"
#include "trainer/train_step.h"

namespace ph {
namespace {

// Every replicated parameter is bitwise equal on the ranks of the tensor-parallel group.
// Returns how many were compared.
int expect_replicated_equal(const Model& model, Communicator& tp_host) {
  std::vector<float> host(model.arena_capacity());
  model.download_params(host.data());
  int compared = 0;
  for (const Param& p : model.table().params()) {
    if (p.split != Split::Replicated) continue;
    std::vector<float> all(p.numel * static_cast<size_t>(tp_host.size()));
    tp_host.all_gather(host.data() + p.offset, all.data(), p.numel);
    for (int r = 1; r < tp_host.size(); ++r)
      EXPECT_EQ(0, std::memcmp(all.data(), all.data() + r * p.numel, p.numel * sizeof(float)))
          << p.name << " differs between tensor-parallel ranks 0 and " << r;
    ++compared;
  }
  return compared;
}

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
  EXPECT_GE(expect_replicated_equal(*model, *grid.tp_comm), 10);
  // Not vacuous: training moved the replicated LayerNorm weights away from 1.
  std::vector<float> host(model->arena_capacity());
  model->download_params(host.data());
  EXPECT_NE(host[model->table()[model->table().find("h.1.ln2.weight")].offset], 1.0f);
}

ModelConfig seq2seq_model() {
  ModelConfig m;
  m.vocab_size = 200;  // padded to 256 with tp=2
  m.n_layers = 2;
  m.d_model = 16;
  m.n_heads = 4;
  m.seq_len = 6;
  m.init_std = 0.1f;
  m.dropout_embed = m.dropout_attn = m.dropout_resid = 0.1f;
  return m;
}

TEST(TensorParallel, EncoderDecoderBlocksMatchOneRankAndStayBitwiseEqual) {
  const ProcessGrid grid = make_grid(2);
  const ModelConfig mc = seq2seq_model();
  const int B = 3;
  test::ModelBatch mb = test::model_batch(B, mc.seq_len, mc.vocab_size - 1, 5);
  mb.batch.sample0 = 4;
  test::Seq2SeqBlocks ref(test::cpu(), mc, test::setup(B));
  test::Seq2SeqBlocks tp(test::cpu(), mc, test::setup(B, grid));
  ref.initialize(9);
  tp.initialize(9);
  int64_t counted = 0;
  const double lr = test::step(ref, mb, 0.05f, &counted);
  const double lt = test::step(tp, mb, 0.05f, nullptr);
  EXPECT_NEAR(lt, lr, 1e-5 * std::fabs(lr));
  // Every gradient element this rank holds against the same element of the full gradient.
  for (const Param& p : tp.table().params()) {
    const Param& rp = ref.table()[ref.table().find(p.name)];
    const int64_t rows = p.local_shape[0], cols = p.local_shape.size() > 1 ? p.local_shape[1] : 1;
    const int64_t full_cols = rp.local_shape.size() > 1 ? rp.local_shape[1] : 1;
    testing::Diff diff;
    for (int64_t i = 0; i < rows && p.block_offset[0] + i < p.shape[0]; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t gi = p.block_offset[0] + i;
        const int64_t gj = (p.block_offset.size() > 1 ? p.block_offset[1] : 0) + j;
        diff.add(tp.grads()[p.offset + static_cast<size_t>(i * cols + j)],
                 ref.grads()[rp.offset + static_cast<size_t>(gi * full_cols + gj)]);
      }
    EXPECT_LE(diff.relative(), 1e-5) << p.name << " (tp rank " << grid.tp_rank << ")";
  }
  // 20 AdamW steps on tp=2: the replicated parameters never drift apart.
  OptimConfig oc;
  oc.decay_1d = true;
  AdamW opt(test::cpu(), oc, tp.table());
  for (int s = 0; s < 20; ++s) {
    mb.dropout.step = static_cast<uint32_t>(s);
    test::step(tp, mb, 0.05f, nullptr);
    opt.step(tp.params(), tp.grads(), 1e-2f, s + 1, 1.0f);
  }
  EXPECT_GE(expect_replicated_equal(tp, *grid.tp_comm), 20);
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
