#include "parallel/grid.h"

#include <mpi.h>

#include <numeric>
#include <string>

#include "parallel/deadline.h"
#include "parallel/errors.h"
#include "parallel/mpi_communicator.h"

namespace ph {
namespace {

// "{1, 2, 4}": the divisors of n.
std::string divisors(int n) {
  std::string s = "{";
  for (int d = 1; d <= n; ++d)
    if (n % d == 0) s += (s.size() > 1 ? ", " : "") + std::to_string(d);
  return s + "}";
}

void check_tp_divides_world(int world, int tp) {
  if (tp < 1) throw InputError("parallel.tp=" + std::to_string(tp) + " must be at least 1");
  if (world % tp != 0)
    throw InputError("parallel.tp=" + std::to_string(tp) + " does not divide the world size " +
                     std::to_string(world) + " (mpirun -n " + std::to_string(world) +
                     "): choose tp in " + divisors(world));
}

// A communicator over the ranks of MPI_COMM_WORLD with the same color, ordered by world rank.
std::unique_ptr<Communicator> split_world(int color, int key, const char* name) {
  MPI_Comm part = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, color, key, &part);
  auto comm = std::make_unique<MpiCommunicator>(part, name);
  MPI_Comm_free(&part);
  return comm;
}

}  // namespace

ProcessGrid make_grid(int tp) {
  ProcessGrid g;
  MPI_Comm_size(MPI_COMM_WORLD, &g.world);
  MPI_Comm_rank(MPI_COMM_WORLD, &g.rank);
  check_tp_divides_world(g.world, tp);
  g.tp = tp;
  g.dp = g.world / tp;
  g.tp_rank = g.rank % tp;
  g.dp_rank = g.rank / tp;

  // Creating communicators is collective over the world: a rank that never arrives is a hang.
  const Deadline deadline("creating the process grid", "", 0, "world", g.world);
  MPI_Comm node = MPI_COMM_NULL;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, g.rank, MPI_INFO_NULL, &node);
  MPI_Comm_rank(node, &g.local_rank);
  MPI_Comm_size(node, &g.local_size);
  MPI_Comm_free(&node);

  g.world_comm = std::make_unique<MpiCommunicator>(MPI_COMM_WORLD, "world");
  g.tp_comm = split_world(/*color=*/g.dp_rank, /*key=*/g.rank, "tensor-parallel");
  g.dp_comm = split_world(/*color=*/g.tp_rank, /*key=*/g.rank, "data-parallel");
  return g;
}

void validate_layout(int world, int tp, int n_heads, int ffn_width, int padded_vocab,
                     int global_batch, int micro_batch) {
  check_tp_divides_world(world, tp);
  const std::string tp_is = "parallel.tp=" + std::to_string(tp);
  if (n_heads % tp != 0)
    throw InputError("model.n_heads=" + std::to_string(n_heads) + " is not divisible by " + tp_is +
                     " (each tensor-parallel rank holds whole heads): choose tp in " +
                     divisors(std::gcd(world, n_heads)) + ", the common divisors of n_heads and " +
                     "the world size " + std::to_string(world));
  if (ffn_width % tp != 0)
    throw InputError("the FFN width " + std::to_string(ffn_width) +
                     " (model.d_ff, or 4 x model.d_model when d_ff is 0) is not divisible by " +
                     tp_is + ": choose tp in " +
                     divisors(std::gcd(std::gcd(world, n_heads), ffn_width)) +
                     ", the common divisors of n_heads, the FFN width and the world size " +
                     std::to_string(world));
  if (padded_vocab % tp != 0)
    throw InputError("the padded vocabulary size " + std::to_string(padded_vocab) +
                     " is not divisible by " + tp_is +
                     " (the embedding and LM head are split by vocabulary rows)");
  if (micro_batch < 1)
    throw InputError("train.micro_batch=" + std::to_string(micro_batch) + " must be at least 1");
  const int dp = world / tp;
  const int step = dp * micro_batch;
  if (global_batch < 0)
    throw InputError("train.global_batch=" + std::to_string(global_batch) +
                     " must be 0 (meaning dp x micro_batch) or positive");
  if (global_batch % step != 0)
    throw InputError("train.global_batch=" + std::to_string(global_batch) +
                     " is not a multiple of dp x micro_batch = " + std::to_string(dp) + " x " +
                     std::to_string(micro_batch) + " = " + std::to_string(step));
}

}  // namespace ph
