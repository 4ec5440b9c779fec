// The order in which a dataset visits its items in one epoch: a Fisher–Yates permutation of
// [0, n) whose draws come from philox_bits(seed, rng::kShuffleA, epoch mod 2^32, counter)
// (kernels/common/rng_streams.h: the data-order stream), each exactly uniform (Lemire's bounded
// integers with rejection). It is the permutation io/dataset.h's shuffled windows follow, so
// token windows and sentence pairs share one documented scheme: for i = n-1 .. 1, swap perm[i]
// with perm[j], j uniform in [0, i], drawing at counters 0, 1, 2, ... in that order.
#pragma once
#include <cstdint>
#include <vector>

namespace ph {

// Fills perm (its size n is at most 2^32 - 1: callers check) with the permutation of `epoch`.
void epoch_permutation(uint64_t seed, uint64_t epoch, std::vector<uint32_t>& perm);

}  // namespace ph
