// The checkpoint format (README "Inside a file"): the root attributes, one float32 dataset
// with a checksum attribute per tensor, and the collective save, load, verify and describe
// built on the directory side (checkpoint_directory), the checksum (checkpoint_checksum), the
// tensor blocks (checkpoint_blocks) and the HDF5 plumbing (checkpoint_hdf5).
#include "io/checkpoint.h"

#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "io/checkpoint_blocks.h"
#include "io/checkpoint_checksum.h"
#include "io/checkpoint_directory.h"
#include "io/checkpoint_hdf5.h"
#include "parallel/agreement.h"
#include "parallel/mpi_communicator.h"

namespace ph {

namespace fs = std::filesystem;

namespace {

using ckpt::Block;
using ckpt::check_h5;
using ckpt::H5Id;
using ckpt::make_id;
using ckpt::NewerFormatError;
using ckpt::QuietHdf5;
using ckpt::read_attr;
using ckpt::read_string_attr;
using ckpt::unreadable;
using ckpt::write_attr;
using ckpt::write_string_attr;

// ---------------------------------------------------------------------------------------
// Attributes

void check_meta(const CheckpointMeta& meta, const std::string& ctx) {
  if (meta.step < 0) throw std::invalid_argument(ctx + "negative step");
  if (meta.optimizer_steps < 0 || meta.optimizer_steps > meta.step)
    throw std::invalid_argument(ctx + "optimizer_steps " + std::to_string(meta.optimizer_steps) +
                                " is not in [0, step " + std::to_string(meta.step) + "]");
  if (meta.format_version != kCheckpointFormatVersion)
    throw std::invalid_argument(ctx + "format version " + std::to_string(meta.format_version) +
                                " requested; this polyhead writes version " +
                                std::to_string(kCheckpointFormatVersion));
  for (const std::string* s :
       {&meta.config_yaml, &meta.layout, &meta.model_summary, &meta.tokenizer,
        &meta.tokenizer_vocab, &meta.tokenizer_merges, &meta.best_eval})
    if (s->find('\0') != std::string::npos)
      throw std::invalid_argument(ctx + "a text attribute contains a NUL character");
}

// The root attributes covered by meta_checksum, in the order of the record (README "The
// checksum of the attributes").
std::string meta_record(const CheckpointMeta& m) {
  std::string out;
  auto add = [&out](const char* key, const std::string& value) {
    out += key;
    out += '\0';
    out += value;
    out += '\0';
  };
  add("format_version", std::to_string(m.format_version));
  add("step", std::to_string(m.step));
  add("optimizer_steps", std::to_string(m.optimizer_steps));
  add("consumed_samples", std::to_string(m.consumed_samples));
  add("seed", std::to_string(m.seed));
  add("config", m.config_yaml);
  add("layout", m.layout);
  add("model", m.model_summary);
  if (m.format_version >= 4) {
    add("tokenizer", m.tokenizer);
    add("tokenizer_vocab", m.tokenizer_vocab);
    add("tokenizer_merges", m.tokenizer_merges);
  }
  if (m.format_version >= 5) add("best_eval", m.best_eval);
  return out;
}

void write_meta(hid_t file, const CheckpointMeta& meta, const std::string& what) {
  const int version = kCheckpointFormatVersion;
  CheckpointMeta stored = meta;
  stored.format_version = version;
  const uint64_t checksum = checkpoint_meta_checksum(stored);
  write_attr(file, "format_version", H5T_STD_I32LE, H5T_NATIVE_INT, &version, what);
  write_attr(file, "step", H5T_STD_I64LE, H5T_NATIVE_INT64, &meta.step, what);
  write_attr(file, "optimizer_steps", H5T_STD_I64LE, H5T_NATIVE_INT64, &meta.optimizer_steps, what);
  write_attr(file, "consumed_samples", H5T_STD_U64LE, H5T_NATIVE_UINT64, &meta.consumed_samples,
             what);
  write_attr(file, "seed", H5T_STD_U64LE, H5T_NATIVE_UINT64, &meta.seed, what);
  write_string_attr(file, "config", meta.config_yaml, what);
  write_string_attr(file, "layout", meta.layout, what);
  write_string_attr(file, "model", meta.model_summary, what);
  write_string_attr(file, "tokenizer", meta.tokenizer, what);
  write_string_attr(file, "tokenizer_vocab", meta.tokenizer_vocab, what);
  write_string_attr(file, "tokenizer_merges", meta.tokenizer_merges, what);
  write_string_attr(file, "best_eval", meta.best_eval, what);
  write_attr(file, "meta_checksum", H5T_STD_U64LE, H5T_NATIVE_UINT64, &checksum, what);
}

// Reads the root attributes of a file of format `version` (1 to kCheckpointFormatVersion) and,
// from version 3 on, verifies their checksum.
CheckpointMeta read_meta(hid_t file, const std::string& path, int version) {
  CheckpointMeta m;
  m.format_version = version;
  if (m.format_version < 1)
    throw unreadable(path, "invalid format version " + std::to_string(m.format_version));
  m.step = read_attr<int64_t>(file, "step", H5T_NATIVE_INT64, "the file", path);
  if (m.format_version >= 2)
    m.optimizer_steps =
        read_attr<int64_t>(file, "optimizer_steps", H5T_NATIVE_INT64, "the file", path);
  else
    m.optimizer_steps = m.step;  // version 1 predates skipped steps being counted apart
  m.consumed_samples =
      read_attr<uint64_t>(file, "consumed_samples", H5T_NATIVE_UINT64, "the file", path);
  m.seed = read_attr<uint64_t>(file, "seed", H5T_NATIVE_UINT64, "the file", path);
  m.config_yaml = read_string_attr(file, "config", path);
  m.layout = read_string_attr(file, "layout", path);
  m.model_summary = read_string_attr(file, "model", path);
  if (m.format_version >= 4) {
    m.tokenizer = read_string_attr(file, "tokenizer", path);
    m.tokenizer_vocab = read_string_attr(file, "tokenizer_vocab", path);
    m.tokenizer_merges = read_string_attr(file, "tokenizer_merges", path);
  }
  if (m.format_version >= 5) m.best_eval = read_string_attr(file, "best_eval", path);
  const InputError edited("checkpoint " + path +
                          ": its attributes fail their checksum (the file was edited or is "
                          "corrupted)");
  if (m.format_version >= 3) {
    const auto stored =
        read_attr<uint64_t>(file, "meta_checksum", H5T_NATIVE_UINT64, "the file", path);
    if (stored != checkpoint_meta_checksum(m)) throw edited;
  } else if (H5Aexists(file, "meta_checksum") > 0) {
    throw edited;  // only version 3 and later write it: format_version was changed
  }
  if (m.optimizer_steps < 0 || m.optimizer_steps > m.step)
    throw unreadable(path, "optimizer_steps " + std::to_string(m.optimizer_steps) +
                               " is not in [0, step " + std::to_string(m.step) + "]");
  return m;
}

// ---------------------------------------------------------------------------------------
// Reading

// Refuses a path that is not a regular file (or a link to one) before HDF5 sees it: MPI-IO
// would print pages of errors for a directory, and wait forever on a FIFO.
void check_is_file(const std::string& path) {
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (st.type() == fs::file_type::not_found)
    throw InputError("checkpoint " + path + " does not exist");
  if (ec) throw InputError("checkpoint " + path + " cannot be accessed: " + ec.message());
  if (fs::is_directory(st))
    throw InputError("checkpoint " + path + " is a directory, not a checkpoint file");
  if (!fs::is_regular_file(st)) throw InputError("checkpoint " + path + " is not a regular file");
}

// Collective: opens a checkpoint read-only and reads (and checks) its attributes.
H5Id open_checkpoint(const std::string& path, Communicator& group, MPI_Comm comm,
                     CheckpointMeta* meta) {
  H5Id file;
  int64_t version = 0;
  agree(group, [&] {
    check_is_file(path);
    H5Id fapl = ckpt::mpio_fapl(comm, "checkpoint " + path + ": cannot set up MPI-IO");
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.get());
    if (f < 0) throw unreadable(path, ckpt::hdf5_detail());
    file = H5Id(f, H5Fclose);
    version = read_attr<int>(file.get(), "format_version", H5T_NATIVE_INT, "the file", path);
  });
  // The ranks read one file; the maximum makes them all throw alike.
  group.all_reduce(&version, 1, ReduceOp::Max);
  if (version > kCheckpointFormatVersion)
    throw NewerFormatError("checkpoint " + path + " has format version " + std::to_string(version) +
                           "; this polyhead reads versions up to " +
                           std::to_string(kCheckpointFormatVersion) + " (use a newer polyhead)");
  agree(group, [&] { *meta = read_meta(file.get(), path, static_cast<int>(version)); });
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
  if (obj < 0) throw unreadable(path, "tensor " + name + ": " + ckpt::hdf5_detail());
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
  if (ndims < 0) throw unreadable(path, "tensor " + name + ": " + ckpt::hdf5_detail());
  std::vector<hsize_t> dims(static_cast<size_t>(ndims));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  if (shape && dims != *shape)
    throw InputError(where + " has shape " + ckpt::shape_str(dims) + " in the file, expected " +
                     ckpt::shape_str(*shape));
  *checksum =
      read_attr<uint64_t>(dset.get(), "checksum", H5T_NATIVE_UINT64, "tensor " + name, path);
  return dset;
}

InputError corrupted(const std::string& path, const std::string& name) {
  return InputError("checkpoint " + path + ": tensor " + name +
                    " fails its checksum (file corrupted)");
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
// Writing

// A generous size of the file: the data, the strings, and HDF5's metadata.
uint64_t estimated_file_bytes(const CheckpointMeta& meta, const std::vector<TensorSlice>& tensors,
                              const std::vector<Block>& blocks) {
  uint64_t bytes = (uint64_t{1} << 20) +
                   2 * (meta.config_yaml.size() + meta.layout.size() + meta.model_summary.size() +
                        meta.tokenizer_vocab.size() + meta.tokenizer_merges.size());
  for (size_t i = 0; i < tensors.size(); ++i)
    bytes += 4 * blocks[i].full + 8192 + 4 * tensors[i].name.size();
  return bytes;
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
  ckpt::Selection sel = ckpt::select_block(dset.get(), b, t.writer, what);
  const float nothing = 0.0f;
  check_h5(H5Dwrite(dset.get(), H5T_NATIVE_FLOAT, sel.mem_space.get(), sel.file_space.get(), dxpl,
                    t.data ? t.data : &nothing),
           what);
}

// Collective: writes the whole checkpoint to tmp (about `bytes` long) and closes it.
void write_file(const std::string& tmp, uint64_t bytes, const CheckpointMeta& meta,
                const std::vector<TensorSlice>& tensors, const std::vector<Block>& blocks,
                const std::vector<uint64_t>& checksums, Communicator& group, MPI_Comm comm,
                const std::string& ctx) {
  H5Id file, lcpl, dxpl;
  agree(group, [&] {
    const std::string what = ctx + "cannot create " + tmp;
    H5Id fapl = ckpt::mpio_fapl(comm, what);
    lcpl = make_id(H5Pcreate(H5P_LINK_CREATE), H5Pclose, what);
    check_h5(H5Pset_create_intermediate_group(lcpl.get(), 1), what);
    dxpl = ckpt::transfer_plist(H5FD_MPIO_COLLECTIVE, what);
    file = make_id(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose, what);
    // The superblock goes to disk first, so that closing after a failed reservation only
    // rewrites blocks the file already has: HDF5 1.10 cannot recover from a failed close.
    check_h5(H5Fflush(file.get(), H5F_SCOPE_GLOBAL), what);
    if (group.rank() == 0) ckpt::reserve_space(tmp, bytes, ctx);
  });
  agree(group,
        [&] { write_meta(file.get(), meta, ctx + "cannot write the attributes to " + tmp); });
  for (size_t i = 0; i < tensors.size(); ++i)
    agree(group, [&] {
      write_tensor(file.get(), tensors[i], blocks[i], checksums[i], lcpl.get(), dxpl.get(),
                   ctx + "cannot write tensor " + tensors[i].name + " to " + tmp);
    });
  agree(group, [&] { check_h5(file.close(), ctx + "cannot close " + tmp); });
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Public API

uint64_t checkpoint_meta_checksum(const CheckpointMeta& meta) {
  const std::string record = meta_record(meta);
  uint64_t sum = 0;
  for (size_t i = 0; i < record.size(); ++i)
    sum += ckpt::checksum_term(i, static_cast<unsigned char>(record[i]));
  return sum;
}

namespace {

// Collective: writes dir/name atomically (through name.tmp) and returns its path.
std::string save_file(const std::string& dir, const std::string& name, const CheckpointMeta& meta,
                      const std::vector<TensorSlice>& tensors, MPI_Comm comm) {
  QuietHdf5 quiet;
  MpiCommunicator group(comm);
  const int rank = group.rank();
  const std::string path = (fs::path(dir.empty() ? "." : dir) / name).string();
  const std::string tmp = path + ".tmp";
  const std::string ctx = "cannot save checkpoint " + path + ": ";

  std::vector<Block> blocks;
  agree(group, [&] {
    if (dir.empty()) throw std::invalid_argument(ctx + "the directory name is empty");
    check_meta(meta, ctx);
    blocks = ckpt::check_slices(tensors, ctx);
  });
  ckpt::check_same_list(tensors, group, ctx);
  const std::vector<uint64_t> covered = ckpt::writer_elements(tensors, blocks, group);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (covered[i] != blocks[i].full)
      throw std::invalid_argument(
          ctx + "the writer blocks of tensor " + tensors[i].name + " cover " +
          std::to_string(covered[i]) + " of its " + std::to_string(blocks[i].full) +
          " elements (every element must be written by exactly one rank; mark replicas "
          "writer=false)");

  std::vector<uint64_t> checksums(tensors.size(), 0);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].writer) checksums[i] = ckpt::block_checksum(tensors[i].data, blocks[i]);
  checksums = ckpt::sum_over_ranks(std::move(checksums), comm);
  const uint64_t bytes = estimated_file_bytes(meta, tensors, blocks);

  // Space problems are caught here, before any file exists: HDF5 1.10 cannot close a file
  // whose writes failed (the process would crash at exit).
  agree(group, [&] {
    ckpt::check_file_size_limit(bytes, ctx);
    if (rank == 0) ckpt::prepare_directory(dir, tmp, bytes, ctx);
  });
  auto remove_tmp = [&] {
    group.barrier();  // every rank has closed the file
    if (rank == 0) ::unlink(tmp.c_str());
  };
  try {
    write_file(tmp, bytes, meta, tensors, blocks, checksums, group, comm, ctx);
    agree(group, [&] {
      if (rank == 0) ckpt::commit(tmp, path, ctx);
    });
  } catch (const InputError& e) {
    // The HDF5 helpers report their failures as InputError (they serve the readers too); while
    // writing, a failure is the environment's (every rank converts alike: agree rethrew it).
    remove_tmp();
    throw IoError(e.what());
  } catch (...) {
    remove_tmp();
    throw;
  }
  return path;
}

}  // namespace

std::string save_checkpoint(const std::string& dir, const CheckpointMeta& meta,
                            const std::vector<TensorSlice>& tensors, MPI_Comm comm, int keep_last) {
  const std::string name = checkpoint_file_name(meta.step);
  const std::string path = save_file(dir, name, meta, tensors, comm);
  MpiCommunicator group(comm);
  agree(group, [&] {
    if (group.rank() == 0) ckpt::write_latest(dir, name, "cannot save checkpoint " + path + ": ");
  });
  if (group.rank() == 0) ckpt::prune(dir, keep_last, name);
  group.barrier();
  return path;
}

std::string save_named_checkpoint(const std::string& dir, const std::string& name,
                                  const CheckpointMeta& meta,
                                  const std::vector<TensorSlice>& tensors, MPI_Comm comm) {
  MpiCommunicator group(comm);
  agree(group, [&] {
    if (name.size() <= 3 || !name.ends_with(".h5") || name.find('/') != std::string::npos ||
        name.starts_with("step_"))
      throw std::invalid_argument("cannot save checkpoint " + name + " in " + dir +
                                  ": the name must be a file name ending in .h5 and not "
                                  "step_*");
  });
  const std::string path = save_file(dir, name, meta, tensors, comm);
  group.barrier();
  return path;
}

CheckpointMeta read_checkpoint_meta(const std::string& path, MPI_Comm comm) {
  QuietHdf5 quiet;
  MpiCommunicator group(comm);
  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, group, comm, &meta);
  return meta;
}

void load_checkpoint(const std::string& path, const std::vector<TensorSlice>& tensors,
                     MPI_Comm comm) {
  QuietHdf5 quiet;
  MpiCommunicator group(comm);
  const std::string ctx = "cannot load checkpoint " + path + ": ";
  std::vector<Block> blocks;
  agree(group, [&] { blocks = ckpt::check_slices(tensors, ctx); });
  ckpt::check_same_list(tensors, group, ctx);
  const std::vector<uint64_t> covered = ckpt::writer_elements(tensors, blocks, group);

  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, group, comm, &meta);
  H5Id dxpl;
  agree(group, [&] { dxpl = ckpt::transfer_plist(H5FD_MPIO_COLLECTIVE, ctx + "MPI-IO"); });
  std::vector<uint64_t> stored(tensors.size()), sums(tensors.size(), 0);
  for (size_t i = 0; i < tensors.size(); ++i) {
    const TensorSlice& t = tensors[i];
    const Block& b = blocks[i];
    agree(group, [&] {
      H5Id dset = open_tensor(file.get(), t.name, &b.shape, path, &stored[i]);
      if (b.full == 0) return;  // nothing stored, checksum 0
      const std::string what = "checkpoint " + path + ": cannot read tensor " + t.name;
      ckpt::Selection sel = ckpt::select_block(dset.get(), b, true, what);
      float nothing = 0.0f;
      check_h5(H5Dread(dset.get(), H5T_NATIVE_FLOAT, sel.mem_space.get(), sel.file_space.get(),
                       dxpl.get(), t.data ? t.data : &nothing),
               what);
      // The writers' blocks tile the tensor: they hold every element once. Otherwise (a
      // partial load, or replicas all marked writers) the ranks read the whole dataset.
      if (covered[i] == b.full)
        sums[i] = t.writer ? ckpt::block_checksum(t.data, b) : 0;
      else
        sums[i] = ckpt::checksum_share(dset.get(), b.shape, group.rank(), group.size(), what);
    });
  }
  sums = ckpt::sum_over_ranks(std::move(sums), comm);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (sums[i] != stored[i]) throw corrupted(path, tensors[i].name);
}

void verify_checkpoint(const std::string& path, MPI_Comm comm) {
  QuietHdf5 quiet;
  MpiCommunicator group(comm);
  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, group, comm, &meta);
  std::vector<std::string> names;
  agree(group, [&] { names = ckpt::list_datasets(file.get(), path); });
  std::sort(names.begin(), names.end(), natural_less);
  std::vector<uint64_t> stored(names.size()), sums(names.size(), 0);
  for (size_t i = 0; i < names.size(); ++i)
    agree(group, [&] {
      H5Id dset = open_tensor(file.get(), names[i], nullptr, path, &stored[i]);
      sums[i] = ckpt::checksum_share(dset.get(), ckpt::dataset_shape(dset.get()), group.rank(),
                                     group.size(),
                                     "checkpoint " + path + ": cannot read tensor " + names[i]);
    });
  sums = ckpt::sum_over_ranks(std::move(sums), comm);
  for (size_t i = 0; i < names.size(); ++i)
    if (sums[i] != stored[i]) throw corrupted(path, names[i]);
}

std::string describe_checkpoint(const std::string& path, MPI_Comm comm) {
  QuietHdf5 quiet;
  MpiCommunicator group(comm);
  CheckpointMeta meta;
  H5Id file = open_checkpoint(path, group, comm, &meta);
  struct Row {
    std::string name, shape;
    uint64_t elements;
  };
  std::vector<Row> rows;
  agree(group, [&] {
    std::vector<std::string> names = ckpt::list_datasets(file.get(), path);
    std::sort(names.begin(), names.end(), natural_less);
    for (const std::string& name : names) {
      H5Id dset = make_id(H5Dopen2(file.get(), name.c_str(), H5P_DEFAULT), H5Dclose,
                          "checkpoint " + path + ": cannot open tensor " + name);
      const Block b = ckpt::whole(ckpt::dataset_shape(dset.get()));
      rows.push_back({name, ckpt::shape_str(b.shape), b.full});
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
    << "\noptimizer steps   " << meta.optimizer_steps;
  if (meta.format_version < 2) o << " (not stored before format version 2: taken as the step)";
  o << "\nconsumed samples  " << meta.consumed_samples << "\nseed              " << meta.seed
    << "\nlayout            " << meta.layout << "\nmodel             " << meta.model_summary
    << "\ntokenizer         " << meta.tokenizer;
  if (meta.format_version < 4) o << " (not stored before format version 4: byte-level)";
  if (meta.tokenizer == "bpe")
    o << " (vocab.json " << meta.tokenizer_vocab.size() << " bytes, merges.txt "
      << meta.tokenizer_merges.size() << " bytes)";
  if (meta.tokenizer == "tiktoken") o << " (rank file " << meta.tokenizer_vocab.size() << " bytes)";
  o << "\nbest evaluation   " << (meta.best_eval.empty() ? "none" : meta.best_eval);
  if (meta.format_version < 5) o << " (not stored before format version 5)";
  o << "\nmodel parameters  " << model << " (elements under /model)"
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
