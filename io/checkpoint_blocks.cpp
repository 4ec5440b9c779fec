#include "io/checkpoint_blocks.h"

#include <bit>
#include <set>
#include <stdexcept>

namespace ph::ckpt {
namespace {

// An absolute HDF5 path whose components are non-empty and not "." or "..".
bool valid_name(const std::string& name) {
  if (name.size() < 2 || name[0] != '/') return false;
  size_t start = 1;
  while (start <= name.size()) {
    size_t end = name.find('/', start);
    if (end == std::string::npos) end = name.size();
    const std::string part = name.substr(start, end - start);
    if (part.empty() || part == "." || part == "..") return false;
    start = end + 1;
  }
  return true;
}

Block check_slice(const TensorSlice& t, const std::string& context) {
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument(context + "tensor " + t.name + ": " + why);
  };
  if (!valid_name(t.name))
    bad("the name must be an absolute HDF5 path such as /model/wte (no empty, '.' or '..' parts)");
  const size_t n = t.shape.size();
  if (!t.offset.empty() && t.offset.size() != n)
    bad("offset has " + std::to_string(t.offset.size()) + " dims, the shape " + std::to_string(n));
  if (!t.count.empty() && t.count.size() != n)
    bad("count has " + std::to_string(t.count.size()) + " dims, the shape " + std::to_string(n));
  constexpr uint64_t kMaxElements = uint64_t{1} << 62;
  Block b;
  for (size_t d = 0; d < n; ++d) {
    const int64_t size = t.shape[d];
    const int64_t off = t.offset.empty() ? 0 : t.offset[d];
    const int64_t cnt = t.count.empty() ? size - off : t.count[d];
    if (size < 0) bad("negative extent " + std::to_string(size) + " in dim " + std::to_string(d));
    if (off < 0 || cnt < 0) bad("negative block offset or count in dim " + std::to_string(d));
    b.shape.push_back(static_cast<hsize_t>(size));
    b.offset.push_back(static_cast<hsize_t>(off));
    b.count.push_back(static_cast<hsize_t>(cnt));
    if (size > 0 && b.full > kMaxElements / static_cast<uint64_t>(size))
      bad("more than 2^62 elements");
    b.full *= static_cast<uint64_t>(size);
    b.local *= static_cast<uint64_t>(cnt);
  }
  if (b.local > 0) {
    for (size_t d = 0; d < n; ++d)
      if (b.offset[d] + b.count[d] > b.shape[d])
        bad("block [" + std::to_string(b.offset[d]) + ", +" + std::to_string(b.count[d]) +
            ") exceeds shape " + shape_str(b.shape) + " in dim " + std::to_string(d));
    if (!t.data) bad("data is null");
  }
  return b;
}

}  // namespace

std::string shape_str(const std::vector<hsize_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

Block whole(const std::vector<hsize_t>& shape) {
  Block b;
  b.shape = shape;
  b.offset.assign(shape.size(), 0);
  b.count = shape;
  for (hsize_t d : shape) b.full *= d;
  b.local = b.full;
  return b;
}

std::vector<Block> check_slices(const std::vector<TensorSlice>& tensors,
                                const std::string& context) {
  std::vector<Block> blocks;
  std::set<std::string> names;
  for (const TensorSlice& t : tensors) {
    blocks.push_back(check_slice(t, context));
    if (!names.insert(t.name).second)
      throw std::invalid_argument(context + "tensor " + t.name + " is listed twice");
  }
  for (const std::string& name : names)
    for (size_t pos = name.find('/', 1); pos != std::string::npos; pos = name.find('/', pos + 1))
      if (names.count(name.substr(0, pos)))
        throw std::invalid_argument(context + "tensor " + name + " lies inside tensor " +
                                    name.substr(0, pos) + " (a tensor cannot be a group)");
  return blocks;
}

void check_same_list(const std::vector<TensorSlice>& tensors, Communicator& group,
                     const std::string& context) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
  auto feed = [&h](uint64_t byte) { h = (h ^ byte) * 0x100000001b3ULL; };
  for (const TensorSlice& t : tensors) {
    for (char c : t.name) feed(static_cast<unsigned char>(c));
    feed(0x100);
    for (int64_t d : t.shape)
      for (int k = 0; k < 8; ++k) feed((static_cast<uint64_t>(d) >> (8 * k)) & 0xff);
    feed(0x200);
  }
  // ~x = -x - 1 reverses the order of int64, so the maxima of x and of ~x are this rank's own
  // values only when every rank has the same x.
  const auto mine = std::bit_cast<int64_t>(h);
  int64_t v[2] = {mine, ~mine};
  group.all_reduce(v, 2, ReduceOp::Max);
  if (v[0] != mine || v[1] != ~mine)
    throw std::invalid_argument(context +
                                "the ranks passed different tensor lists (every rank must "
                                "list the same names and shapes in the same order)");
}

std::vector<uint64_t> writer_elements(const std::vector<TensorSlice>& tensors,
                                      const std::vector<Block>& blocks, Communicator& group) {
  // A block holds at most 2^62 elements (check_slices), so int64 holds the counts.
  std::vector<int64_t> v(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    v[i] = tensors[i].writer ? static_cast<int64_t>(blocks[i].local) : 0;
  group.all_reduce(v.data(), v.size(), ReduceOp::Sum);
  return std::vector<uint64_t>(v.begin(), v.end());
}

Selection select_block(hid_t dset, const Block& b, bool take, const std::string& what) {
  Selection s;
  s.file_space = make_id(H5Dget_space(dset), H5Sclose, what);
  const bool any = take && b.local > 0;
  if (b.shape.empty()) {
    s.mem_space = make_id(H5Screate(H5S_SCALAR), H5Sclose, what);
  } else if (any) {
    check_h5(H5Sselect_hyperslab(s.file_space.get(), H5S_SELECT_SET, b.offset.data(), nullptr,
                                 b.count.data(), nullptr),
             what);
    s.mem_space =
        make_id(H5Screate_simple(static_cast<int>(b.count.size()), b.count.data(), nullptr),
                H5Sclose, what);
  } else {
    const hsize_t one = 1;
    s.mem_space = make_id(H5Screate_simple(1, &one, nullptr), H5Sclose, what);
  }
  if (!any) {
    check_h5(H5Sselect_none(s.file_space.get()), what);
    check_h5(H5Sselect_none(s.mem_space.get()), what);
  }
  return s;
}

}  // namespace ph::ckpt
