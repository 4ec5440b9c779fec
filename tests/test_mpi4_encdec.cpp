// Four ranks: the encoder-decoder on the 2 x 2 grid (dp=2, tp=2) and on tp=4 (one head per rank,
// the vocabulary padded to 512) against the unsharded model, dropout on, padding in source and
// target.
#include "tests/encdec_parallel_check.h"

namespace ph {
namespace {

TEST(EncDecParallel, TwoByTwoGridMatchesOneRank) {
  const ProcessGrid grid = make_grid(2);
  ASSERT_EQ(grid.dp, 2);
  testing::check_encdec_against_reference(testing::encdec_model(ShareEmbeddings::kAll, Norm::kPost),
                                          grid, 4);
}

TEST(EncDecParallel, TensorParallelFourMatchesOneRank) {
  const ProcessGrid grid = make_grid(4);
  testing::check_encdec_against_reference(testing::encdec_model(ShareEmbeddings::kNone, Norm::kPre),
                                          grid, 2);
}

}  // namespace
}  // namespace ph
