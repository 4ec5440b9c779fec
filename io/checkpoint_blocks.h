// The tensors of one checkpoint call in HDF5's terms (internal to io/checkpoint*.cpp): each
// TensorSlice checked and turned into a Block (its full shape and this rank's block of it),
// the ranks' agreement on the tensor list and on who writes what, and the dataspaces that
// select a block of a dataset.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/checkpoint_hdf5.h"
#include "parallel/communicator.h"

namespace ph::ckpt {

// One tensor's full shape and this rank's block of it.
struct Block {
  std::vector<hsize_t> shape;   // full shape ({} = scalar)
  std::vector<hsize_t> offset;  // block start
  std::vector<hsize_t> count;   // block extent
  uint64_t full = 1;            // elements of the full tensor
  uint64_t local = 1;           // elements of the block
};

// "[a, b]"
std::string shape_str(const std::vector<hsize_t>& s);

// The whole-tensor block of a shape.
Block whole(const std::vector<hsize_t>& shape);

// Checks every slice (name, dims, block inside the shape, data) and the list (no name twice,
// no tensor inside another); throws std::invalid_argument(context + why) on the first fault.
std::vector<Block> check_slices(const std::vector<TensorSlice>& tensors,
                                const std::string& context);

// Collective: throws std::invalid_argument on every rank unless every rank lists the same
// names and shapes in the same order.
void check_same_list(const std::vector<TensorSlice>& tensors, Communicator& group,
                     const std::string& context);

// Collective: per tensor, the elements held by ranks with writer=true, summed over ranks.
std::vector<uint64_t> writer_elements(const std::vector<TensorSlice>& tensors,
                                      const std::vector<Block>& blocks, Communicator& group);

// The file and memory dataspaces selecting a block of a dataset.
struct Selection {
  H5Id file_space;
  H5Id mem_space;
};

// Selects block b of dset; nothing when !take or the block is empty (a rank that takes part
// in a collective transfer without data).
Selection select_block(hid_t dset, const Block& b, bool take, const std::string& what);

}  // namespace ph::ckpt
