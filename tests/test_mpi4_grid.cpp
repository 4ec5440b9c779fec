// The process grid on 4 ranks (all on this host), and validate_layout's messages.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "input_error.h"
#include "io/config.h"
#include "parallel/grid.h"

namespace ph {
namespace {

// Bit q set for every world rank q that took part: a sum of 1 << rank over the group.
int64_t members(Communicator& c, int world_rank) {
  int64_t bit = int64_t{1} << world_rank;
  c.all_reduce(&bit, 1, ReduceOp::Sum);
  return bit;
}

std::vector<float> gathered_ranks(Communicator& c, int world_rank) {
  const float mine = static_cast<float>(world_rank);
  std::vector<float> all(static_cast<size_t>(c.size()));
  c.all_gather(&mine, all.data(), 1);
  return all;
}

class Grid : public ::testing::TestWithParam<int> {};

TEST_P(Grid, GroupsFollowTheLayout) {
  const int tp = GetParam();
  const ProcessGrid g = make_grid(tp);
  EXPECT_EQ(g.world, 4);
  EXPECT_EQ(g.tp, tp);
  EXPECT_EQ(g.dp, 4 / tp);
  EXPECT_EQ(g.tp_rank, g.rank % tp);
  EXPECT_EQ(g.dp_rank, g.rank / tp);
  // ctest starts every rank on this host.
  EXPECT_EQ(g.local_size, 4);
  EXPECT_EQ(g.local_rank, g.rank);

  EXPECT_EQ(g.world_comm->size(), 4);
  EXPECT_EQ(g.world_comm->rank(), g.rank);
  EXPECT_EQ(g.tp_comm->size(), tp);
  EXPECT_EQ(g.tp_comm->rank(), g.tp_rank);
  EXPECT_EQ(g.dp_comm->size(), g.dp);
  EXPECT_EQ(g.dp_comm->rank(), g.dp_rank);

  // The tp group: the consecutive ranks [rank / tp * tp, rank / tp * tp + tp), in order.
  const int first = g.rank / tp * tp;
  int64_t tp_expected = 0;
  std::vector<float> tp_ranks;
  for (int q = first; q < first + tp; ++q) {
    tp_expected |= int64_t{1} << q;
    tp_ranks.push_back(static_cast<float>(q));
  }
  EXPECT_EQ(members(*g.tp_comm, g.rank), tp_expected);
  EXPECT_EQ(gathered_ranks(*g.tp_comm, g.rank), tp_ranks);

  // The dp group: the ranks with the same rank % tp, in order.
  int64_t dp_expected = 0;
  std::vector<float> dp_ranks;
  for (int q = g.rank % tp; q < 4; q += tp) {
    dp_expected |= int64_t{1} << q;
    dp_ranks.push_back(static_cast<float>(q));
  }
  EXPECT_EQ(members(*g.dp_comm, g.rank), dp_expected);
  EXPECT_EQ(gathered_ranks(*g.dp_comm, g.rank), dp_ranks);

  EXPECT_EQ(members(*g.world_comm, g.rank), 0b1111);
}

INSTANTIATE_TEST_SUITE_P(Tp, Grid, ::testing::Values(1, 2, 4));

using testing::input_error;

TEST(MakeGrid, TpThatDoesNotDivideTheWorldIsBadInput) {
  EXPECT_EQ(input_error([] { make_grid(3); }),
            "parallel.tp=3 does not divide the world size 4 (mpirun -n 4): choose tp in "
            "{1, 2, 4}");
  EXPECT_EQ(input_error([] { make_grid(8); }),
            "parallel.tp=8 does not divide the world size 4 (mpirun -n 4): choose tp in "
            "{1, 2, 4}");
  EXPECT_EQ(input_error([] { make_grid(0); }), "parallel.tp=0 must be at least 1");
}

// validate_layout(world, tp, n_heads, ffn_width, padded_vocab, global_batch, micro_batch)
TEST(ValidateLayout, AcceptsLayoutsThatDivide) {
  EXPECT_EQ(input_error([] { validate_layout(4, 2, 4, 512, 256, 32, 8); }), "");
  EXPECT_EQ(input_error([] { validate_layout(4, 4, 12, 3072, 50304, 0, 8); }), "");
  EXPECT_EQ(input_error([] { validate_layout(1, 1, 3, 7, 11, 5, 5); }), "");
}

TEST(ValidateLayout, WorldNotDivisibleByTp) {
  EXPECT_EQ(input_error([] { validate_layout(4, 3, 12, 3072, 50304, 0, 8); }),
            "parallel.tp=3 does not divide the world size 4 (mpirun -n 4): choose tp in "
            "{1, 2, 4}");
  EXPECT_EQ(input_error([] { validate_layout(6, 4, 12, 3072, 50304, 0, 8); }),
            "parallel.tp=4 does not divide the world size 6 (mpirun -n 6): choose tp in "
            "{1, 2, 3, 6}");
  EXPECT_EQ(input_error([] { validate_layout(4, -2, 12, 3072, 50304, 0, 8); }),
            "parallel.tp=-2 must be at least 1");
}

TEST(ValidateLayout, HeadsNotDivisibleByTp) {
  EXPECT_EQ(input_error([] { validate_layout(8, 4, 6, 1024, 512, 0, 8); }),
            "model.n_heads=6 is not divisible by parallel.tp=4 (each tensor-parallel rank "
            "holds whole heads): choose tp in {1, 2}, the common divisors of n_heads and the "
            "world size 8");
}

TEST(ValidateLayout, FfnWidthNotDivisibleByTp) {
  EXPECT_EQ(input_error([] { validate_layout(8, 8, 8, 1020, 1024, 0, 1); }),
            "the FFN width 1020 (model.d_ff, or 4 x model.d_model when d_ff is 0) is not "
            "divisible by parallel.tp=8: choose tp in {1, 2, 4}, the common divisors of "
            "n_heads, the FFN width and the world size 8");
}

TEST(ValidateLayout, PaddedVocabularyNotDivisibleByTp) {
  EXPECT_EQ(input_error([] { validate_layout(4, 2, 4, 512, 257, 0, 1); }),
            "the padded vocabulary size 257 is not divisible by parallel.tp=2 (the embedding "
            "and LM head are split by vocabulary rows)");
}

TEST(ValidateLayout, GlobalBatchNotAMultipleOfDpTimesMicroBatch) {
  EXPECT_EQ(input_error([] { validate_layout(4, 2, 4, 512, 256, 24, 8); }),
            "train.global_batch=24 is not a multiple of dp x micro_batch = 2 x 8 = 16");
  EXPECT_EQ(input_error([] { validate_layout(4, 1, 4, 512, 256, 8, 4); }),
            "train.global_batch=8 is not a multiple of dp x micro_batch = 4 x 4 = 16");
  EXPECT_EQ(input_error([] { validate_layout(4, 2, 4, 512, 256, -16, 8); }),
            "train.global_batch=-16 must be 0 (meaning dp x micro_batch) or positive");
  EXPECT_EQ(input_error([] { validate_layout(4, 2, 4, 512, 256, 16, 0); }),
            "train.micro_batch=0 must be at least 1");
}

}  // namespace
}  // namespace ph
