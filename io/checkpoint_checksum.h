// The checkpoint checksum (internal to io/checkpoint*.cpp; README "The checksum"): a tensor's
// checksum is the sum modulo 2^64 of one term per element (checkpoint_checksum_term), so the
// ranks sum the terms of their blocks and one all-reduce gives the whole tensor's, whatever
// the layout.
#pragma once
#include <hdf5.h>
#include <mpi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint_blocks.h"

namespace ph::ckpt {

// The term of one element (see checkpoint_checksum_term in io/checkpoint.h).
inline uint64_t checksum_term(uint64_t index, uint32_t bits) {
  uint64_t z = (index * 0x9E3779B97F4A7C15ULL) ^ bits;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Sum of the terms of block b, held contiguously (row-major, [b.count...]) at data.
uint64_t block_checksum(const float* data, const Block& b);

// Rank `rank` of `ranks`' share of the checksum of a stored dataset of `shape`: the ranks split
// dim 0 into contiguous ranges and read theirs independently, in pieces of bounded size.
// Throws InputError(what + HDF5 detail) when a read fails.
uint64_t checksum_share(hid_t dset, const std::vector<hsize_t>& shape, int rank, int ranks,
                        const std::string& what);

// Collective: the element-wise sum of v over the ranks of comm, modulo 2^64.
std::vector<uint64_t> sum_over_ranks(std::vector<uint64_t> v, MPI_Comm comm);

}  // namespace ph::ckpt
