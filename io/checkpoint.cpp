#include "io/checkpoint.h"

#include <fcntl.h>
#include <hdf5.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "io/config.h"

namespace ph {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------
// HDF5 plumbing

// Silences HDF5's automatic error-stack printing while alive; our exceptions say it all.
class QuietHdf5 {
 public:
  QuietHdf5() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietHdf5() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietHdf5(const QuietHdf5&) = delete;
  QuietHdf5& operator=(const QuietHdf5&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The most specific messages of HDF5's error stack; call right after the failing call.
std::string hdf5_detail() {
  std::vector<std::string> descs;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned, const H5E_error2_t* e, void* out) -> herr_t {
        if (e->desc && *e->desc) static_cast<std::vector<std::string>*>(out)->push_back(e->desc);
        return 0;
      },
      &descs);
  if (descs.empty()) return "HDF5 error";
  // The outermost message says what failed, the innermost why.
  if (descs.size() == 1 || descs.front() == descs.back()) return descs.back();
  return descs.front() + ": " + descs.back();
}

// An owned HDF5 identifier, closed by the function it was created with.
class H5Id {
 public:
  using Closer = herr_t (*)(hid_t);
  H5Id() = default;
  H5Id(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  H5Id(H5Id&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), closer_(o.closer_) {}
  H5Id& operator=(H5Id&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      closer_ = o.closer_;
    }
    return *this;
  }
  H5Id(const H5Id&) = delete;
  H5Id& operator=(const H5Id&) = delete;
  ~H5Id() { reset(); }

  hid_t get() const { return id_; }
  // Closes now and reports the result (closing a file flushes it: errors surface here).
  herr_t close() {
    const herr_t r = id_ >= 0 ? closer_(id_) : 0;
    id_ = H5I_INVALID_HID;
    return r;
  }

 private:
  void reset() noexcept {
    if (id_ >= 0) closer_(id_);
    id_ = H5I_INVALID_HID;
  }
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Wraps a freshly created identifier; throws InputError(what + HDF5 detail) when invalid.
H5Id make_id(hid_t id, H5Id::Closer closer, const std::string& what) {
  if (id < 0) throw InputError(what + ": " + hdf5_detail());
  return H5Id(id, closer);
}

void check_h5(herr_t status, const std::string& what) {
  if (status < 0) throw InputError(what + ": " + hdf5_detail());
}

// ---------------------------------------------------------------------------------------
// Agreement across ranks

enum class Failure : int { Input = 1, Argument = 2, Other = 3 };

// Runs fn on this rank. If it threw on any rank of comm, every rank throws the exception of
// the lowest failing rank, so that all ranks leave together with the same message. Inside fn,
// collectives must come before anything that can fail on one rank only.
template <class F>
void on_all_ranks(MPI_Comm comm, F&& fn) {
  Failure kind = Failure::Other;
  std::string msg;
  bool failed = true;
  try {
    fn();
    failed = false;
  } catch (const InputError& e) {
    kind = Failure::Input;
    msg = e.what();
  } catch (const std::invalid_argument& e) {
    kind = Failure::Argument;
    msg = e.what();
  } catch (const std::exception& e) {
    msg = e.what();
  } catch (...) {
    msg = "unknown error";
  }
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const int mine = failed ? rank : size;
  int first = size;
  MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm);
  if (first == size) return;
  int header[2] = {static_cast<int>(kind), static_cast<int>(msg.size())};
  MPI_Bcast(header, 2, MPI_INT, first, comm);
  msg.resize(static_cast<size_t>(header[1]));
  MPI_Bcast(msg.data(), header[1], MPI_CHAR, first, comm);
  switch (static_cast<Failure>(header[0])) {
    case Failure::Input:
      throw InputError(msg);
    case Failure::Argument:
      throw std::invalid_argument(msg);
    case Failure::Other:
      break;
  }
  throw std::runtime_error(msg);
}

int comm_rank(MPI_Comm comm) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  return rank;
}

int comm_size(MPI_Comm comm) {
  int size = 1;
  MPI_Comm_size(comm, &size);
  return size;
}

std::vector<uint64_t> sum_over_ranks(std::vector<uint64_t> v, MPI_Comm comm) {
  if (!v.empty())
    MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_UINT64_T, MPI_SUM, comm);
  return v;
}

// ---------------------------------------------------------------------------------------
// Tensors, blocks, checksums

// One tensor's full shape and this rank's block of it, in HDF5's terms.
struct Block {
  std::vector<hsize_t> shape;   // full shape ({} = scalar)
  std::vector<hsize_t> offset;  // block start
  std::vector<hsize_t> count;   // block extent
  uint64_t full = 1;            // elements of the full tensor
  uint64_t local = 1;           // elements of the block
};

std::string shape_str(const std::vector<hsize_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Whole-tensor block of a shape.
Block whole(const std::vector<hsize_t>& shape) {
  Block b;
  b.shape = shape;
  b.offset.assign(shape.size(), 0);
  b.count = shape;
  for (hsize_t d : shape) b.full *= d;
  b.local = b.full;
  return b;
}

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

// Collective: every rank must list the same names and shapes in the same order.
void check_same_list(const std::vector<TensorSlice>& tensors, MPI_Comm comm,
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
  uint64_t v[2] = {h, ~h};
  MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, comm);
  if (v[0] != h || v[1] != ~h)
    throw std::invalid_argument(context +
                                "the ranks passed different tensor lists (every rank must "
                                "list the same names and shapes in the same order)");
}

// Collective: per tensor, the elements held by ranks with writer=true, summed over ranks.
std::vector<uint64_t> writer_elements(const std::vector<TensorSlice>& tensors,
                                      const std::vector<Block>& blocks, MPI_Comm comm) {
  std::vector<uint64_t> v(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) v[i] = tensors[i].writer ? blocks[i].local : 0;
  return sum_over_ranks(std::move(v), comm);
}

inline uint64_t checksum_term(uint64_t index, uint32_t bits) {
  uint64_t z = (index * 0x9E3779B97F4A7C15ULL) ^ bits;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Sum of the checksum terms of a block held contiguously at data.
uint64_t block_checksum(const float* data, const Block& b) {
  if (b.local == 0) return 0;
  const size_t n = b.shape.size();
  if (n == 0) return checksum_term(0, std::bit_cast<uint32_t>(data[0]));
  std::vector<uint64_t> stride(n, 1);
  for (size_t d = n - 1; d > 0; --d) stride[d - 1] = stride[d] * b.shape[d];
  const uint64_t row_len = b.count[n - 1];
  const auto rows = static_cast<int64_t>(b.local / row_len);
  uint64_t sum = 0;
#pragma omp parallel for reduction(+ : sum) schedule(static) if (b.local >= (1u << 18))
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t rest = static_cast<uint64_t>(r);
    uint64_t start = b.offset[n - 1];
    for (size_t d = n - 1; d-- > 0;) {
      start += (b.offset[d] + rest % b.count[d]) * stride[d];
      rest /= b.count[d];
    }
    const float* row = data + static_cast<uint64_t>(r) * row_len;
    for (uint64_t j = 0; j < row_len; ++j)
      sum += checksum_term(start + j, std::bit_cast<uint32_t>(row[j]));
  }
  return sum;
}

// The file and memory dataspaces selecting block b of dset (nothing when !take).
struct Selection {
  H5Id file_space;
  H5Id mem_space;
};

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

// ---------------------------------------------------------------------------------------
// Attributes

void write_attr(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, const void* value,
                const std::string& what) {
  H5Id space = make_id(H5Screate(H5S_SCALAR), H5Sclose, what);
  H5Id attr = make_id(H5Acreate2(obj, name, file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT),
                      H5Aclose, what);
  check_h5(H5Awrite(attr.get(), mem_type, value), what);
}

void write_string_attr(hid_t obj, const char* name, const std::string& value,
                       const std::string& what) {
  H5Id type = make_id(H5Tcopy(H5T_C_S1), H5Tclose, what);
  check_h5(H5Tset_size(type.get(), H5T_VARIABLE), what);
  check_h5(H5Tset_cset(type.get(), H5T_CSET_UTF8), what);
  const char* text = value.c_str();
  write_attr(obj, name, type.get(), type.get(), &text, what);
}

InputError unreadable(const std::string& path, const std::string& detail) {
  return InputError("checkpoint " + path +
                    " is unreadable (truncated or not a polyhead checkpoint): " + detail);
}

// Opens a single-valued attribute; a missing or array attribute makes the file unreadable.
H5Id open_attr(hid_t obj, const char* name, const std::string& owner, const std::string& path) {
  if (H5Aexists(obj, name) <= 0) throw unreadable(path, owner + " has no attribute '" + name + "'");
  hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
  if (a < 0) throw unreadable(path, owner + " attribute '" + name + "': " + hdf5_detail());
  H5Id attr(a, H5Aclose);
  H5Id space(H5Aget_space(attr.get()), H5Sclose);
  if (space.get() < 0 || H5Sget_simple_extent_npoints(space.get()) != 1)
    throw unreadable(path, owner + " attribute '" + name + "' is not a single value");
  return attr;
}

template <class T>
T read_attr(hid_t obj, const char* name, hid_t mem_type, const std::string& owner,
            const std::string& path) {
  H5Id attr = open_attr(obj, name, owner, path);
  T value{};
  if (H5Aread(attr.get(), mem_type, &value) < 0)
    throw unreadable(path, owner + " attribute '" + name + "': " + hdf5_detail());
  return value;
}

std::string read_string_attr(hid_t obj, const char* name, const std::string& path) {
  H5Id attr = open_attr(obj, name, "the file", path);
  const std::string what = "attribute '" + std::string(name) + "'";
  H5Id ftype(H5Aget_type(attr.get()), H5Tclose);
  if (ftype.get() < 0 || H5Tget_class(ftype.get()) != H5T_STRING)
    throw unreadable(path, what + " is not a string");
  H5Id mtype(H5Tcopy(ftype.get()), H5Tclose);
  if (H5Tis_variable_str(ftype.get()) > 0) {
    char* text = nullptr;
    if (mtype.get() < 0 || H5Aread(attr.get(), mtype.get(), &text) < 0)
      throw unreadable(path, what + ": " + hdf5_detail());
    std::string out = text ? text : "";
    H5free_memory(text);
    return out;
  }
  std::string buf(H5Tget_size(ftype.get()), '\0');
  if (mtype.get() < 0 || H5Aread(attr.get(), mtype.get(), buf.data()) < 0)
    throw unreadable(path, what + ": " + hdf5_detail());
  return buf.substr(0, buf.find('\0'));
}

void write_meta(hid_t file, const CheckpointMeta& meta, const std::string& what) {
  const int version = kCheckpointFormatVersion;
  write_attr(file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, what);
  write_attr(file, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &meta.step, what);
  write_attr(file, "consumed_samples", H5T_STD_U64LE, H5T_NATIVE_UINT64, &meta.consumed_samples,
             what);
  write_attr(file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &meta.seed, what);
  write_string_attr(file, "config", meta.config_yaml, what);
  write_string_attr(file, "layout", meta.layout, what);
  write_string_attr(file, "model", meta.model_summary, what);
}

CheckpointMeta read_meta(hid_t file, const std::string& path) {
  CheckpointMeta m;
  m.format_version = read_attr<int>(file, "format_version", H5T_NATIVE_INT, "the file", path);
  if (m.format_version > kCheckpointFormatVersion)
    throw InputError("checkpoint " + path + " has format version " +
                     std::to_string(m.format_version) + "; this polyhead reads versions up to " +
                     std::to_string(kCheckpointFormatVersion) + " (use a newer polyhead)");
  if (m.format_version < 1)
    throw unreadable(path, "invalid format version " + std::to_string(m.format_version));
  m.step = read_attr<int64_t>(file, "step", H5T_NATIVE_INT64, "the file", path);
  m.consumed_samples =
      read_attr<uint64_t>(file, "consumed_samples", H5T_NATIVE_UINT64, "the file", path);
  m.seed = read_attr<uint64_t>(file, "seed", H5T_NATIVE_UINT64, "the file", path);
  m.config_yaml = read_string_attr(file, "config", path);
  m.layout = read_string_attr(file, "layout", path);
  m.model_summary = read_string_attr(file, "model", path);
  return m;
}

// ---------------------------------------------------------------------------------------
// Files

H5Id mpio_fapl(MPI_Comm comm, const std::string& what) {
  H5Id fapl = make_id(H5Pcreate(H5P_FILE_ACCESS), H5Pclose, what);
  check_h5(H5Pset_fapl_mpio(fapl.get(), comm, MPI_INFO_NULL), what);
  return fapl;
}

H5Id transfer_plist(H5FD_mpio_xfer_t mode, const std::string& what) {
  H5Id dxpl = make_id(H5Pcreate(H5P_DATASET_XFER), H5Pclose, what);
  check_h5(H5Pset_dxpl_mpio(dxpl.get(), mode), what);
  return dxpl;
}

// Collective: opens a checkpoint read-only and reads (and checks) its attributes.
H5Id open_checkpoint(const std::string& path, MPI_Comm comm, CheckpointMeta* meta) {
  H5Id file;
  on_all_ranks(comm, [&] {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw InputError("checkpoint " + path + " does not exist");
    H5Id fapl = mpio_fapl(comm, "checkpoint " + path + ": cannot set up MPI-IO");
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
    if (f < 0) throw unreadable(path, hdf5_detail());
    file = H5Id(f, H5Fclose);
    *meta = read_meta(file.get(), path);
  });
  return file;
}

// Opens the dataset `name`, checks that it is a float32 tensor of `shape` (when non-null)
// with a checksum, and returns it with the stored checksum.
H5Id open_tensor(hid_t file, const std::string& name, const std::vector<hsize_t>* shape,
                 const std::string& path, uint64_t* checksum) {
  // Walk the path so that a missing group reads as a missing tensor.
  for (size_t pos = name.find('/', 1);; pos = name.find('/', pos + 1)) {
    const std::string prefix = name.substr(0, pos);
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0)
      throw InputError("checkpoint " + path + " has no tensor " + name);
    if (pos == std::string::npos) break;
  }
  const hid_t obj = H5Oopen(file, name.c_str(), H5P_DEFAULT);
  if (obj < 0) throw unreadable(path, "tensor " + name + ": " + hdf5_detail());
  if (H5Iget_type(obj) != H5I_DATASET) {
    H5Oclose(obj);
    throw InputError("checkpoint " + path + " has no tensor " + name + " (it is a group)");
  }
  H5Id dset(obj, H5Dclose);
  const std::string where = "checkpoint " + path + ": tensor " + name;
  H5Id type(H5Dget_type(dset.get()), H5Tclose);
  if (type.get() < 0 || H5Tget_class(type.get()) != H5T_FLOAT || H5Tget_size(type.get()) != 4)
    throw InputError(where + " is not float32");
  H5Id space(H5Dget_space(dset.get()), H5Sclose);
  const int ndims = space.get() < 0 ? -1 : H5Sget_simple_extent_ndims(space.get());
  if (ndims < 0) throw unreadable(path, "tensor " + name + ": " + hdf5_detail());
  std::vector<hsize_t> dims(static_cast<size_t>(ndims));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (shape && dims != *shape)
    throw InputError(where + " has shape " + shape_str(dims) + " in the file, expected " +
                     shape_str(*shape));
  *checksum =
      read_attr<uint64_t>(dset.get(), "checksum", H5T_NATIVE_UINT64, "tensor " + name, path);
  return dset;
}

std::vector<hsize_t> dataset_shape(hid_t dset) {
  H5Id space(H5Dget_space(dset), H5Sclose);
  std::vector<hsize_t> dims(
      static_cast<size_t>(std::max(0, H5Sget_simple_extent_ndims(space.get()))));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

// This rank's share of a dataset's checksum: the ranks split dim 0 into contiguous ranges and
// read theirs independently in pieces of bounded size.
uint64_t checksum_share(hid_t dset, const std::vector<hsize_t>& shape, MPI_Comm comm,
                        const std::string& what) {
  const int rank = comm_rank(comm), size = comm_size(comm);
  const Block all = whole(shape);
  if (all.full == 0) return 0;
  std::vector<float> buf;
  if (shape.empty()) {
    if (rank != 0) return 0;
    buf.resize(1);
    check_h5(H5Dread(dset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data()), what);
    return block_checksum(buf.data(), all);
  }
  const hsize_t rows = shape[0], row_len = all.full / rows;
  const auto ranks = static_cast<hsize_t>(size), r = static_cast<hsize_t>(rank);
  const hsize_t begin = rows / ranks * r + std::min(r, rows % ranks);
  const hsize_t end = begin + rows / ranks + (r < rows % ranks ? 1 : 0);
  constexpr hsize_t kPieceElements = hsize_t{1} << 22;
  const hsize_t piece_rows = std::max<hsize_t>(1, kPieceElements / row_len);
  buf.resize(std::min(piece_rows, end - begin) * row_len);
  uint64_t sum = 0;
  for (hsize_t first = begin; first < end; first += piece_rows) {
    Block piece = all;
    piece.offset[0] = first;
    piece.count[0] = std::min(piece_rows, end - first);
    piece.local = piece.count[0] * row_len;
    Selection sel = select_block(dset, piece, true, what);
    check_h5(H5Dread(dset, H5T_NATIVE_FLOAT, sel.mem_space.get(), sel.file_space.get(), H5P_DEFAULT,
                     buf.data()),
             what);
    sum += block_checksum(buf.data(), piece);
  }
  return sum;
}

InputError corrupted(const std::string& path, const std::string& name) {
  return InputError("checkpoint " + path + ": tensor " + name +
                    " fails its checksum (file corrupted)");
}

// Every dataset in the file, in HDF5's name order.
std::vector<std::string> list_datasets(hid_t file, const std::string& path) {
  struct Visit {
    std::vector<std::string> names;
  } visit;
  const herr_t status = H5Lvisit(
      file, H5_INDEX_NAME, H5_ITER_INC,
      [](hid_t group, const char* name, const H5L_info_t* info, void* out) -> herr_t {
        if (info->type != H5L_TYPE_HARD) return 0;
        const hid_t obj = H5Oopen(group, name, H5P_DEFAULT);
        if (obj < 0) return -1;
        if (H5Iget_type(obj) == H5I_DATASET)
          static_cast<Visit*>(out)->names.push_back(std::string("/") + name);
        H5Oclose(obj);
        return 0;
      },
      &visit);
  if (status < 0) throw unreadable(path, hdf5_detail());
  return visit.names;
}

// Name order with digit runs compared as numbers: h.2 before h.10.
bool natural_less(const std::string& a, const std::string& b) {
  size_t i = 0, j = 0;
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  while (i < a.size() && j < b.size()) {
    if (digit(a[i]) && digit(b[j])) {
      size_t ie = i, je = j;
      while (ie < a.size() && digit(a[ie])) ++ie;
      while (je < b.size() && digit(b[je])) ++je;
      std::string_view na(a.data() + i, ie - i), nb(b.data() + j, je - j);
      while (na.size() > 1 && na[0] == '0') na.remove_prefix(1);
      while (nb.size() > 1 && nb[0] == '0') nb.remove_prefix(1);
      if (na.size() != nb.size()) return na.size() < nb.size();
      if (na != nb) return na < nb;
      i = ie;
      j = je;
    } else {
      if (a[i] != b[j]) return a[i] < b[j];
      ++i;
      ++j;
    }
  }
  return a.size() - i < b.size() - j;
}

// ---------------------------------------------------------------------------------------
// Save: the temporary file, the commit, the pointer, the pruning

std::string errno_text() {
  return std::strerror(errno);
}

// A generous size of the file: the data, the strings, and HDF5's metadata.
uint64_t estimated_file_bytes(const CheckpointMeta& meta, const std::vector<TensorSlice>& tensors,
                              const std::vector<Block>& blocks) {
  uint64_t bytes = (uint64_t{1} << 20) +
                   2 * (meta.config_yaml.size() + meta.layout.size() + meta.model_summary.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    bytes += 4 * blocks[i].full + 8192 + 4 * tensors[i].name.size();
  return bytes;
}

// Throws when this process may not write a file of `bytes` (ulimit -f).
void check_file_size_limit(uint64_t bytes, const std::string& ctx) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < bytes)
    throw InputError(ctx + "the checkpoint needs about " +
                     std::to_string((bytes + (1 << 20) - 1) >> 20) +
                     " MiB, more than the file size limit (ulimit -f) of " +
                     std::to_string(limit.rlim_cur >> 20) + " MiB");
}

// Throws when the file system holding dir has less than `bytes` free.
void check_free_space(const std::string& dir, uint64_t bytes, const std::string& ctx) {
  struct statvfs st {};
  if (::statvfs(dir.c_str(), &st) != 0 || st.f_blocks == 0) return;  // nothing to go by
  const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
  if (free_bytes < bytes)
    throw InputError(ctx + "not enough free space in " + dir + ": the checkpoint needs about " +
                     std::to_string((bytes + (1 << 20) - 1) >> 20) + " MiB, " +
                     std::to_string(free_bytes >> 20) + " MiB are free");
}

void write_tensor(hid_t file, const TensorSlice& t, const Block& b, uint64_t checksum, hid_t lcpl,
                  hid_t dxpl, const std::string& what) {
  H5Id space = make_id(
      b.shape.empty() ? H5Screate(H5S_SCALAR)
                      : H5Screate_simple(static_cast<int>(b.shape.size()), b.shape.data(), nullptr),
      H5Sclose, what);
  H5Id dcpl = make_id(H5Pcreate(H5P_DATASET_CREATE), H5Pclose, what);
  check_h5(H5Pset_layout(dcpl.get(), H5D_CONTIGUOUS), what);
  check_h5(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), what);
  check_h5(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), what);
  H5Id dset = make_id(
      H5Dcreate2(file, t.name.c_str(), H5T_IEEE_F32LE, space.get(), lcpl, dcpl.get(), H5P_DEFAULT),
      H5Dclose, what);
  write_attr(dset.get(), "checksum", H5T_STD_U64LE, H5T_NATIVE_UINT64, &checksum, what);
  if (b.full == 0) return;  // no storage to write to
  Selection sel = select_block(dset.get(), b, t.writer, what);
  const float nothing = 0.0f;
  check_h5(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, sel.mem_space.get(), sel.file_space.get(), dxpl,
                    t.data ? t.data : &nothing),
           what);
}

// Reserves `bytes` of disk for path (without changing its size), so that a full disk or
// quota shows up here, before any data, rather than half-way through HDF5's writes.
void reserve_space(const std::string& path, uint64_t bytes, const std::string& ctx) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) throw InputError(ctx + "cannot open " + path + ": " + errno_text());
  const int rc = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes));
  const int err = errno;
  ::close(fd);
  // File systems without fallocate get no reservation; the free-space check still ran.
  if (rc != 0 && err != EOPNOTSUPP && err != ENOSYS && err != EINVAL)
    throw InputError(ctx + "cannot reserve " + std::to_string(bytes >> 20) + " MiB for " + path +
                     ": " + std::strerror(err));
}

// Collective: writes the whole checkpoint to tmp (about `bytes` long) and closes it.
void write_file(const std::string& tmp, uint64_t bytes, const CheckpointMeta& meta,
                const std::vector<TensorSlice>& tensors, const std::vector<Block>& blocks,
                const std::vector<uint64_t>& checksums, MPI_Comm comm, const std::string& ctx) {
  H5Id file, lcpl, dxpl;
  on_all_ranks(comm, [&] {
    const std::string what = ctx + "cannot create " + tmp;
    H5Id fapl = mpio_fapl(comm, what);
    lcpl = make_id(H5Pcreate(H5P_LINK_CREATE), H5Pclose, what);
    check_h5(H5Pset_create_intermediate_group(lcpl.get(), 1), what);
    dxpl = transfer_plist(H5FD_MPIO_COLLECTIVE, what);
    file = make_id(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose, what);
    // The superblock goes to disk first, so that closing after a failed reservation only
    // rewrites blocks the file already has: HDF5 1.10 cannot recover from a failed close.
    check_h5(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), what);
    if (comm_rank(comm) == 0) reserve_space(tmp, bytes, ctx);
  });
  on_all_ranks(
      comm, [&] { write_meta(file.get(), meta, ctx + "cannot write the attributes to " + tmp); });
  for (size_t i = 0; i < tensors.size(); ++i)
    on_all_ranks(comm, [&] {
      write_tensor(file.get(), tensors[i], blocks[i], checksums[i], lcpl.get(), dxpl.get(),
                   ctx + "cannot write tensor " + tensors[i].name + " to " + tmp);
    });
  on_all_ranks(comm, [&] { check_h5(file.close(), ctx + "cannot close " + tmp); });
}

// Flushes a file's (or a directory's) contents to stable storage.
bool sync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  // Some file systems cannot sync a directory; the rename itself is still atomic there.
  const bool ok = ::fsync(fd) == 0 || (directory && (errno == EINVAL || errno == ENOTSUP));
  ::close(fd);
  return ok;
}

std::string parent_dir(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

// Makes tmp durable and moves it to path.
void commit(const std::string& tmp, const std::string& path, const std::string& ctx) {
  if (!sync_path(tmp, false)) throw InputError(ctx + "cannot sync " + tmp + ": " + errno_text());
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw InputError(ctx + "cannot rename " + tmp + " to " + path + ": " + errno_text());
  sync_path(parent_dir(path), true);
}

// Replaces dir/latest with one line naming `name`, atomically.
void write_latest(const std::string& dir, const std::string& name, const std::string& ctx) {
  const std::string latest = (fs::path(dir) / "latest").string(), tmp = latest + ".tmp";
  const std::string line = name + "\n";
  auto fail = [&](const std::string& why) {
    ::unlink(tmp.c_str());
    throw InputError(ctx + "cannot update " + latest + ": " + why);
  };
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(errno_text());
  std::string why;
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size()))
    why = "write failed: " + errno_text();
  else if (::fsync(fd) != 0)
    why = "fsync failed: " + errno_text();
  if (::close(fd) != 0 && why.empty()) why = errno_text();
  if (!why.empty()) fail(why);
  if (std::rename(tmp.c_str(), latest.c_str()) != 0) fail(errno_text());
  sync_path(dir, true);
}

// The step of "step_<digits>.h5" (suffix ".h5"), or -1 for any other name.
int64_t step_of(const std::string& file, const std::string& suffix) {
  if (!file.starts_with("step_") || !file.ends_with(suffix) || file.size() <= 5 + suffix.size())
    return -1;
  const char* first = file.data() + 5;
  const char* last = file.data() + file.size() - suffix.size();
  int64_t step = -1;
  const auto [end, ec] = std::from_chars(first, last, step);
  return ec == std::errc() && end == last ? step : -1;
}

// Deletes stale temporaries and the oldest step files beyond keep_last (keep_last <= 0: none),
// always keeping `current`. Failures only warn: the new checkpoint is already safe.
void prune(const std::string& dir, int keep_last, const std::string& current) {
  std::vector<std::pair<int64_t, fs::path>> steps;
  std::vector<fs::path> stale;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || file == current) continue;
    if (step_of(file, ".h5.tmp") >= 0) stale.push_back(entry.path());
    const int64_t step = step_of(file, ".h5");
    if (step >= 0) steps.emplace_back(step, entry.path());
  }
  if (keep_last > 0) {
    std::sort(steps.begin(), steps.end(), [](const auto& a, const auto& b) { return a > b; });
    for (size_t i = static_cast<size_t>(keep_last) - 1; i < steps.size(); ++i)
      stale.push_back(steps[i].second);
  }
  for (const fs::path& p : stale)
    if (!fs::remove(p, ec) && ec)
      std::fprintf(stderr, "polyhead: warning: cannot delete old checkpoint file %s: %s\n",
                   p.c_str(), ec.message().c_str());
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public API

uint64_t checkpoint_checksum_term(uint64_t index, uint32_t bits) {
  return checksum_term(index, bits);
}

std::string checkpoint_file_name(int64_t step) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "step_%08lld.h5", static_cast<long long>(step));
  return buf;
}

std::string save_checkpoint(const std::string& dir, const CheckpointMeta& meta,
                            const std::vector<TensorSlice>& tensors, MPI_Comm comm, int keep_last) {
  QuietHdf5 quiet;
  const int rank = comm_rank(comm);
  const std::string name = checkpoint_file_name(meta.step);
  const std::string path = (fs::path(dir.empty() ? "." : dir) / name).string();
  const std::string tmp = path + ".tmp";
  const std::string ctx = "cannot save checkpoint " + path + ": ";

  std::vector<Block> blocks;
  on_all_ranks(comm, [&] {
    if (dir.empty()) throw std::invalid_argument(ctx + "the directory name is empty");
    if (meta.step < 0) throw std::invalid_argument(ctx + "negative step");
    if (meta.format_version != kCheckpointFormatVersion)
      throw std::invalid_argument(ctx + "format version " + std::to_string(meta.format_version) +
                                  " requested; this polyhead writes version " +
                                  std::to_string(kCheckpointFormatVersion));
    for (const std::string* s : {&meta.config_yaml, &meta.layout, &meta.model_summary})
      if (s->find('\0') != std::string::npos)
        throw std::invalid_argument(ctx + "a text attribute contains a NUL character");
    blocks = check_slices(tensors, ctx);
  });
  check_same_list(tensors, comm, ctx);
  const std::vector<uint64_t> covered = writer_elements(tensors, blocks, comm);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (covered[i] != blocks[i].full)
      throw std::invalid_argument(
          ctx + "the writer blocks of tensor " + tensors[i].name + " cover " +
          std::to_string(covered[i]) + " of its " + std::to_string(blocks[i].full) +
          " elements (every element must be written by exactly one rank; mark replicas "
          "writer=false)");

  std::vector<uint64_t> checksums(tensors.size(), 0);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].writer) checksums[i] = block_checksum(tensors[i].data, blocks[i]);
  checksums = sum_over_ranks(std::move(checksums), comm);
  const uint64_t bytes = estimated_file_bytes(meta, tensors, blocks);

  // Space problems are caught here, before any file exists: HDF5 1.10 cannot close a file
  // whose writes failed (the process would crash at exit).
  on_all_ranks(comm, [&] {
    check_file_size_limit(bytes, ctx);
    if (rank != 0) return;
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::error_code ec_dir;
    if (!fs::is_directory(dir, ec_dir))
      throw InputError(ctx + "cannot create directory " + dir + ": " +
                       (ec ? ec.message() : "a file of that name exists"));
    // A temporary left by a crashed save is overwritten; anything else in its way is not.
    const fs::file_status st = fs::symlink_status(tmp, ec);
    if (fs::exists(st) && !fs::is_regular_file(st))
      throw InputError(ctx + tmp + " exists and is not a regular file");
    check_free_space(dir, bytes, ctx);
  });
  try {
    write_file(tmp, bytes, meta, tensors, blocks, checksums, comm, ctx);
    on_all_ranks(comm, [&] {
      if (rank == 0) commit(tmp, path, ctx);
    });
  } catch (...) {
    MPI_Barrier(comm);  // every rank has closed the file
    if (rank == 0) ::unlink(tmp.c_str());
    throw;
  }
  on_all_ranks(comm, [&] {
    if (rank == 0) write_latest(dir, name, ctx);
  });
  if (rank == 0) prune(dir, keep_last, name);
  MPI_Barrier(comm);
  return path;
}

std::string latest_checkpoint(const std::string& dir) {
  const fs::path pointer = fs::path(dir) / "latest";
  std::error_code ec;
  if (!fs::exists(pointer, ec)) return "";
  std::ifstream in(pointer);
  std::string line;
  if (!in || !std::getline(in, line))
    throw InputError("checkpoint pointer " + pointer.string() +
                     " is malformed (expected one line with a file name)");
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
  if (line.empty() || line.find('/') != std::string::npos)
    throw InputError("checkpoint pointer " + pointer.string() +
                     " is malformed (expected one line with a file name)");
  const fs::path target = fs::path(dir) / line;
  if (!fs::exists(target, ec))
    throw InputError("checkpoint pointer " + pointer.string() + " names " + line +
                     ", which does not exist");
  return target.string();
}

CheckpointMeta read_checkpoint_meta(const std::string& path, MPI_Comm comm) {
  QuietHdf5 quiet;
  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, comm, &meta);
  return meta;
}

void load_checkpoint(const std::string& path, const std::vector<TensorSlice>& tensors,
                     MPI_Comm comm) {
  QuietHdf5 quiet;
  const std::string ctx = "cannot load checkpoint " + path + ": ";
  std::vector<Block> blocks;
  on_all_ranks(comm, [&] { blocks = check_slices(tensors, ctx); });
  check_same_list(tensors, comm, ctx);
  const std::vector<uint64_t> covered = writer_elements(tensors, blocks, comm);

  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, comm, &meta);
  H5Id dxpl;
  on_all_ranks(comm, [&] { dxpl = transfer_plist(H5FD_MPIO_COLLECTIVE, ctx + "MPI-IO"); });
  std::vector<uint64_t> stored(tensors.size()), sums(tensors.size(), 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSlice& t = tensors[i];
    const Block& b = blocks[i];
    on_all_ranks(comm, [&] {
      H5Id dset = open_tensor(file.get(), t.name, &b.shape, path, &stored[i]);
      if (b.full == 0) return;  // nothing stored, checksum 0
      const std::string what = "checkpoint " + path + ": cannot read tensor " + t.name;
      Selection sel = select_block(dset.get(), b, true, what);
      float nothing = 0.0f;
      check_h5(H5Dread(dset.get(), H5T_NATIVE_FLOAT, sel.mem_space.get(), sel.file_space.get(),
                       dxpl.get(), t.data ? t.data : &nothing),
               what);
      // The writers' blocks tile the tensor: they hold every element once. Otherwise (a
      // partial load, or replicas all marked writers) the ranks read the whole dataset.
      if (covered[i] == b.full)
        sums[i] = t.writer ? block_checksum(t.data, b) : 0;
      else
        sums[i] = checksum_share(dset.get(), b.shape, comm, what);
    });
  }
  sums = sum_over_ranks(std::move(sums), comm);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (sums[i] != stored[i]) throw corrupted(path, tensors[i].name);
}

void verify_checkpoint(const std::string& path, MPI_Comm comm) {
  QuietHdf5 quiet;
  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, comm, &meta);
  std::vector<std::string> names;
  on_all_ranks(comm, [&] { names = list_datasets(file.get(), path); });
  std::sort(names.begin(), names.end(), natural_less);
  std::vector<uint64_t> stored(names.size()), sums(names.size(), 0);
  for (size_t i = 0; i < names.size(); ++i)
    on_all_ranks(comm, [&] {
      H5Id dset = open_tensor(file.get(), names[i], nullptr, path, &stored[i]);
      sums[i] = checksum_share(dset.get(), dataset_shape(dset.get()), comm,
                               "checkpoint " + path + ": cannot read tensor " + names[i]);
    });
  sums = sum_over_ranks(std::move(sums), comm);
  for (size_t i = 0; i < names.size(); ++i)
    if (sums[i] != stored[i]) throw corrupted(path, names[i]);
}

std::string describe_checkpoint(const std::string& path, MPI_Comm comm) {
  QuietHdf5 quiet;
  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, comm, &meta);
  struct Row {
    std::string name, shape;
    uint64_t elements;
  };
  std::vector<Row> rows;
  on_all_ranks(comm, [&] {
    std::vector<std::string> names = list_datasets(file.get(), path);
    std::sort(names.begin(), names.end(), natural_less);
    for (const std::string& name : names) {
      H5Id dset = make_id(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose,
                          "checkpoint " + path + ": cannot open tensor " + name);
      const Block b = whole(dataset_shape(dset.get()));
      rows.push_back({name, shape_str(b.shape), b.full});
    }
  });
  size_t name_width = 0, shape_width = 0;
  uint64_t total = 0, model = 0;
  for (const Row& r : rows) {
    name_width = std::max(name_width, r.name.size());
    shape_width = std::max(shape_width, r.shape.size());
    total += r.elements;
    if (r.name.starts_with("/model/")) model += r.elements;
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w - s.size(), ' '); };
  std::ostringstream o;
  std::error_code ec;
  const auto bytes = fs::file_size(path, ec);
  o << "checkpoint        " << path;
  if (!ec) o << " (" << bytes << " bytes)";
  o << "\nformat version    " << meta.format_version << "\nstep              " << meta.step
    << "\nconsumed samples  " << meta.consumed_samples << "\nseed              " << meta.seed
    << "\nlayout            " << meta.layout << "\nmodel             " << meta.model_summary
    << "\nmodel parameters  " << model << " (elements under /model)"
    << "\ntensors           " << rows.size() << " (" << total << " elements)\n";
  for (const Row& r : rows)
    o << "  " << pad(r.name, name_width) << "  " << pad(r.shape, shape_width) << "  " << r.elements
      << "\n";
  o << "config:\n";
  std::istringstream config(meta.config_yaml);
  for (std::string line; std::getline(config, line);) o << "  " << line << "\n";
  return o.str();
}

}  // namespace ph
