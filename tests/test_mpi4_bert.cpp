// Four ranks: BERT on the 2 x 2 grid (dp=2, tp=2) and on tp=4 (one head per rank, the
// vocabulary and the MLM decoder's bias padded to 512 and split four ways) against the
// unsharded model, dropout on, padding, with and without a sentence head.
#include <gtest/gtest.h>

#include "tests/bert_parallel_check.h"

namespace ph {
namespace {

TEST(BertParallel, TwoByTwoGridMatchesOneRank) {
  const ProcessGrid grid = make_grid(2);
  ASSERT_EQ(grid.dp, 2);
  ASSERT_EQ(grid.tp, 2);
  testing::check_bert_against_reference(testing::bert_model(Norm::kPost, SentenceHead::kNsp), grid,
                                        4);
}

TEST(BertParallel, TensorParallelFourMatchesOneRank) {
  const ProcessGrid grid = make_grid(4);
  ASSERT_EQ(grid.tp, 4);
  testing::check_bert_against_reference(testing::bert_model(Norm::kPre, SentenceHead::kSop), grid,
                                        3);
  testing::check_bert_against_reference(testing::bert_model(Norm::kPost, SentenceHead::kNone), grid,
                                        3);
}

}  // namespace
}  // namespace ph
