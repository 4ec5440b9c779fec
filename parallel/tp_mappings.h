// Megatron's mappings between the replicated stream and a tensor-parallel region, on device
// buffers of the group's communicator (MPI on the CPU backend, NCCL on CUDA).
//
//   copy_to_tp_region      forward: identity (every rank holds the same input);
//                          backward: sum the partial input gradients over the group.
//   reduce_from_tp_region  forward: sum the partial outputs over the group;
//                          backward: identity.
//
// A column-parallel linear layer is entered through copy_to_tp_region, a row-parallel one is
// left through reduce_from_tp_region; both are all-reduces where they do something, and nothing
// at all in a group of one rank.
#pragma once
#include <cstddef>

#include "parallel/communicator.h"

namespace ph {

// A tensor-parallel group as the model sees it: this rank's place and the communicator that
// carries its device buffers (null when size == 1).
struct TpGroup {
  int rank = 0;
  int size = 1;
  Communicator* comm = nullptr;
  bool lead() const { return rank == 0; }  // adds replicated terms once (biases, positions)
};

// The backward of copy_to_tp_region: dx [n] becomes the sum of the group's partial gradients.
inline void copy_to_tp_region_backward(const TpGroup& tp, float* dx, size_t n) {
  if (tp.size > 1) tp.comm->all_reduce(dx, n, ReduceOp::Sum);
}

// The forward of reduce_from_tp_region: y [n] becomes the sum of the group's partial outputs.
inline void reduce_from_tp_region(const TpGroup& tp, float* y, size_t n) {
  if (tp.size > 1) tp.comm->all_reduce(y, n, ReduceOp::Sum);
}

}  // namespace ph
