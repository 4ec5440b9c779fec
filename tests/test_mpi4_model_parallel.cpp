// Four ranks: the 2 x 2 grid (dp=2, tp=2) and tp=4 (vocabulary padded to 512, heads split
// one per rank) against the unsharded model, dropout on.
#include "model_parallel_check.h"

namespace ph {
namespace {

TEST(ModelParallel, TwoByTwoGridMatchesOneRank) {
  const ProcessGrid grid = make_grid(2);
  ASSERT_EQ(grid.dp, 2);
  testing::check_layout_against_reference(testing::parallel_test_model(), grid, 4);
}

TEST(ModelParallel, TensorParallelFourMatchesOneRank) {
  testing::check_layout_against_reference(testing::parallel_test_model(), make_grid(4), 2);
}

}  // namespace
}  // namespace ph
