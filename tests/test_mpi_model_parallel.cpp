// Two ranks: tensor parallelism (tp=2) and data parallelism (dp=2) each against the
// unsharded model — logits, loss and every gradient within 1e-5 relative, dropout on.
#include "model_parallel_check.h"

namespace ph {
namespace {

TEST(ModelParallel, TensorParallelTwoMatchesOneRank) {
  const ProcessGrid grid = make_grid(2);
  ASSERT_EQ(grid.tp, 2);
  testing::check_layout_against_reference(testing::parallel_test_model(), grid, 4);
}

TEST(ModelParallel, TensorParallelPostNormUntiedSinusoidal) {
  ModelConfig m = testing::parallel_test_model();
  m.norm = Norm::kPost;
  m.tie_embeddings = false;
  m.pos_encoding = PosEncoding::kSinusoidal;
  m.activation = Activation::kRelu;
  testing::check_layout_against_reference(m, make_grid(2), 4);
}

TEST(ModelParallel, DataParallelTwoMatchesOneRank) {
  const ProcessGrid grid = make_grid(1);
  ASSERT_EQ(grid.dp, 2);
  testing::check_layout_against_reference(testing::parallel_test_model(), grid, 4);
}

}  // namespace
}  // namespace ph
