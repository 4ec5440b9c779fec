// The process grid: world = dp × tp. The ranks of a tensor-parallel group are consecutive (so
// that they share a node): the tp group of rank r is [r / tp * tp, r / tp * tp + tp) and r's
// place in it is r % tp; the data-parallel group of r is the ranks with the same r % tp, and
// r's place in it is r / tp.
//
//   tp = 2, world = 8:   tp groups {0,1} {2,3} {4,5} {6,7};   dp groups {0,2,4,6} {1,3,5,7}
#pragma once
#include <memory>

#include "parallel/communicator.h"

namespace ph {

struct ProcessGrid {
  int world = 1, rank = 0;       // in MPI_COMM_WORLD
  int dp = 1, tp = 1;            // world = dp * tp
  int dp_rank = 0, tp_rank = 0;  // rank / tp, rank % tp
  int local_rank = 0;            // among the ranks on this node (picks the GPU)
  int local_size = 1;
  std::unique_ptr<Communicator> world_comm, tp_comm, dp_comm;
};

// Builds the grid over MPI_COMM_WORLD (collective: every rank calls it with the same tp).
// Throws InputError, on every rank alike, when tp does not divide the world size.
ProcessGrid make_grid(int tp);

// Checks that a model and batch fit the layout; throws InputError with one message naming the
// numbers. A pure function of its arguments (no MPI), so every rank reaches the same verdict.
//   world         number of ranks (mpirun -n)
//   tp            parallel.tp; dp = world / tp
//   n_heads       attention heads (each tp rank holds n_heads / tp whole heads)
//   ffn_width     FFN width (each tp rank holds ffn_width / tp columns)
//   padded_vocab  the vocabulary rows in memory (each tp rank holds padded_vocab / tp)
//   global_batch  sequences per optimizer step (0: the default, dp * micro_batch)
//   micro_batch   sequences per micro-batch per rank
void validate_layout(int world, int tp, int n_heads, int ffn_width, int padded_vocab,
                     int global_batch, int micro_batch);

}  // namespace ph
