// The encoder-decoder on two ranks, against the unsharded model computed on every rank:
// - tensor parallelism (tp=2: heads of self- and cross-attention and the FFN sharded,
//   embeddings and loss vocab-parallel, the gradient of the encoder output summed over the
//   group once) and data parallelism (dp=2) give the logits, loss and every gradient of one
//   rank (1e-5), with dropout on and padding in source and target, in each sharing mode;
// - replicated parameters (LayerNorms, row-parallel biases) stay bitwise equal on the ranks of
//   the tensor-parallel group over 20 AdamW steps;
// - incremental decoding on tp=2, cross-attention unfolded and folded into the memory, returns,
//   on every rank, the full-vocabulary log-probabilities
//   of the unsharded model's full forward, beams reordering every step.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "model/encdec.h"
#include "tests/encdec_batch.h"
#include "tests/encdec_decoding_check.h"
#include "tests/encdec_parallel_check.h"
#include "tests/model_batch.h"
#include "tests/model_parallel_check.h"
#include "trainer/optimizer.h"

namespace ph {
namespace {

TEST(EncDecParallel, TensorParallelMatchesOneRankInEverySharingMode) {
  const ProcessGrid grid = make_grid(2);
  ASSERT_EQ(grid.tp, 2);
  testing::check_encdec_against_reference(testing::encdec_model(ShareEmbeddings::kAll, Norm::kPost),
                                          grid, 3);
  testing::check_encdec_against_reference(
      testing::encdec_model(ShareEmbeddings::kTgtOut, Norm::kPre), grid, 3);
  testing::check_encdec_against_reference(
      testing::encdec_model(ShareEmbeddings::kNone, Norm::kPost), grid, 3);
}

TEST(EncDecParallel, DataParallelMatchesOneRank) {
  const ProcessGrid grid = make_grid(1);
  ASSERT_EQ(grid.dp, 2);
  testing::check_encdec_against_reference(testing::encdec_model(ShareEmbeddings::kAll, Norm::kPost),
                                          grid, 4);
}

// Every decoder layer adds a partial gradient of the encoder output; summed over the group once,
// the encoder's replicated parameters receive identical gradients on both ranks and never drift.
TEST(EncDecParallel, ReplicatedParametersStayBitwiseEqualOver20Steps) {
  const ProcessGrid grid = make_grid(2);
  const ModelConfig mc = testing::encdec_model(ShareEmbeddings::kAll, Norm::kPost);
  EncDec model(test::cpu(), mc, test::setup(3, grid));
  model.initialize(9);
  OptimConfig oc;
  oc.decay_1d = true;  // the replicated parameters decay too
  AdamW opt(test::cpu(), oc, model.table());
  DropoutContext d = testing::encdec_training();
  for (int s = 0; s < 20; ++s) {
    d.step = static_cast<uint32_t>(s);
    model.zero_grads();
    model.forward_backward(test::encdec_batch(mc, 3, 5 + static_cast<unsigned>(s), 3 * s), 0.05f, d,
                           nullptr);
    opt.step(model.params(), model.grads(), 1e-2f, s + 1, 1.0f);
  }
  EXPECT_GE(testing::expect_replicated_equal(model, *grid.tp_comm), 20);
  // Not vacuous: training moved an encoder LayerNorm away from its initial 1.
  const Param& ln = model.table()[model.table().find("enc.h.0.ln1.weight")];
  EXPECT_NE(model.params()[ln.offset], 1.0f);
}

TEST(EncDecParallel, IncrementalDecodingOnTensorParallelRanksMatchesTheFullForward) {
  const ProcessGrid grid = make_grid(2);
  ModelConfig mc = testing::encdec_model(ShareEmbeddings::kTgtOut, Norm::kPost);
  EncDec model(test::cpu(), mc, test::setup(2, grid));
  EncDec ref(test::cpu(), mc, test::setup(6));
  model.initialize(13);
  ref.initialize(13);
  auto decoder = model.incremental_decoder(2, 3);
  test::check_incremental_decoding(*decoder, ref, 2, 3, 8);
  // Cross-attention folded: each rank folds its heads, the partial outputs are summed and the
  // projection's bias added once; with biases that are not 0, as the unfolded path again.
  test::set_vectors(model);
  test::set_vectors(ref);
  auto folded = model.incremental_decoder(2, 3, CrossFolding::kAlways);
  test::check_incremental_decoding(*folded, ref, 2, 3, 9);
  auto unfolded = model.incremental_decoder(2, 3, CrossFolding::kNever);
  test::check_incremental_decoding(*unfolded, ref, 2, 3, 10);
}

}  // namespace
}  // namespace ph
