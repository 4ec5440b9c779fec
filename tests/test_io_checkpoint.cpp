// HDF5 checkpoints: round trips, slices, pruning, atomic failure (IoError), corruption, edited
// attributes, bad files and format versions, resume discovery, and the h5py recipes of the
// README.
// The tests are written for any number of ranks (blocks are split over the ranks of
// MPI_COMM_WORLD); ctest runs them on one rank, `mpirun -np 2/3` runs them sharded.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <mpi.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "parallel/errors.h"
#include "tests/test_paths.h"

namespace ph {
namespace {

namespace fs = std::filesystem;

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  int s = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &s);
  return s;
}

std::string broadcast(std::string s) {
  int n = static_cast<int>(s.size());
  MPI_Bcast(&n, 1, MPI_INT, 0, MPI_COMM_WORLD);
  s.resize(static_cast<size_t>(n));
  MPI_Bcast(s.data(), n, MPI_CHAR, 0, MPI_COMM_WORLD);
  return s;
}

// A tensor's full value, the same on every rank.
struct Full {
  std::string name;
  std::vector<int64_t> shape;
  std::vector<float> values;
};

Full make_full(const std::string& name, std::vector<int64_t> shape, uint32_t salt) {
  Full t{name, std::move(shape), {}};
  int64_t n = 1;
  for (int64_t d : t.shape) n *= d;
  const float specials[] = {-0.0f,
                            1e-40f,
                            std::numeric_limits<float>::infinity(),
                            std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::max(),
                            0.0f};
  for (int64_t i = 0; i < n; ++i) {
    const auto k = static_cast<uint32_t>(i);
    if (k % 7 == 3)
      t.values.push_back(specials[(k / 7 + salt) % 6]);
    else
      t.values.push_back(static_cast<float>((k * 2654435761u + salt * 40503u) % 20011u) / 97.0f -
                         100.0f);
  }
  return t;
}

// A block of a Full tensor held by this rank.
struct Local {
  std::vector<int64_t> offset, count;
  std::vector<float> data;
};

// Copies the block [offset, offset + count) of t (row-major) into a contiguous buffer.
Local extract(const Full& t, std::vector<int64_t> offset, std::vector<int64_t> count) {
  Local l{std::move(offset), std::move(count), {}};
  const size_t n = t.shape.size();
  int64_t elems = 1;
  for (int64_t c : l.count) elems *= c;
  std::vector<int64_t> idx(n, 0);
  for (int64_t e = 0; e < elems; ++e) {
    int64_t flat = 0;
    for (size_t d = 0; d < n; ++d) flat = flat * t.shape[d] + l.offset[d] + idx[d];
    l.data.push_back(t.values[static_cast<size_t>(flat)]);
    for (size_t d = n; d-- > 0;) {
      if (++idx[d] < l.count[d]) break;
      idx[d] = 0;
    }
  }
  return l;
}

// This rank's part of t when dimension `dim` is split evenly over the ranks (dim < 0: the
// whole tensor, a replica).
Local part_of(const Full& t, int dim) {
  std::vector<int64_t> offset(t.shape.size(), 0), count = t.shape;
  if (dim >= 0) {
    const auto d = static_cast<size_t>(dim);
    const int64_t r = world_rank(), p = world_size(), n = t.shape[d];
    offset[d] = n * r / p;
    count[d] = n * (r + 1) / p - offset[d];
  }
  return extract(t, offset, count);
}

TensorSlice slice_of(const Full& t, Local& l, bool writer = true) {
  TensorSlice s;
  s.name = t.name;
  s.shape = t.shape;
  s.offset = l.offset;
  s.count = l.count;
  s.data = l.data.data();
  s.writer = writer;
  return s;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// Expects fn to throw E on this rank with a message containing every one of `parts`.
template <class E>
void expect_error(const std::function<void()>& fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no exception; expected one containing '" << parts.front() << "'";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(msg.find(p), std::string::npos) << "message: " << msg << "\nmissing: " << p;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
  }
}

CheckpointMeta sample_meta(int64_t step) {
  CheckpointMeta m;
  m.step = step;
  m.optimizer_steps = step / 2;  // as if every other step had been skipped
  m.consumed_samples = (uint64_t{1} << 63) + 5;
  m.seed = 0xFFFFFFFFFFFFFFFFULL;
  m.layout = "dp=1 tp=1 world=" + std::to_string(world_size());
  m.model_summary = "gpt L=2 d=128 H=4 V=256 T=64";
  m.config_yaml = "model:\n  type: gpt  # é → ü\ntrain:\n  seed: 1337\n";
  m.tokenizer = "bpe";
  m.tokenizer_vocab = "{\"!\": 0, \"\\u0120t\": 256, \"Ġé\": 257}";
  m.tokenizer_merges = "#version: 0.2\nĠ t\n";
  m.best_eval = "metric=val_loss value=1.25 step=4 stale=1";
  return m;
}

// Rewrites root attributes of a closed checkpoint with the serial HDF5 API (the datasets and
// their checksums stay as they are): fn gets the open file.
void edit_root(const std::string& path, const std::function<void(hid_t)>& fn) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  fn(file);
  EXPECT_GE(H5Fclose(file), 0);
}

// Overwrites the existing scalar integer attribute `name` of the root with value.
void set_root_int(hid_t file, const char* name, int64_t value) {
  const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
  ASSERT_GE(attr, 0) << name;
  EXPECT_GE(H5Awrite(attr, H5T_NATIVE_INT64, &value), 0) << name;
  H5Aclose(attr);
}

// Replaces the root attribute `name` with a variable-length UTF-8 string (as polyhead writes).
void set_root_string(hid_t file, const char* name, const std::string& value) {
  if (H5Aexists(file, name) > 0) {
    ASSERT_GE(H5Adelete(file, name), 0) << name;
  }
  const hid_t type = H5Tcopy(H5T_C_S1);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  const hid_t space = H5Screate(H5S_SCALAR);
  const hid_t attr = H5Acreate2(file, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(attr, 0) << name;
  const char* text = value.c_str();
  EXPECT_GE(H5Awrite(attr, type, &text), 0) << name;
  H5Aclose(attr);
  H5Sclose(space);
  H5Tclose(type);
}

uint64_t root_uint(const std::string& path, const char* name) {
  uint64_t value = 0;
  edit_root(path, [&](hid_t file) {
    const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    ASSERT_GE(attr, 0) << name;
    EXPECT_GE(H5Aread(attr, H5T_NATIVE_UINT64, &value), 0) << name;
    H5Aclose(attr);
  });
  return value;
}

// Whether the root attribute `name` of a closed checkpoint is stored with exactly this type.
bool root_attribute_has_type(const std::string& path, const char* name, hid_t want) {
  bool equal = false;
  edit_root(path, [&](hid_t file) {
    const hid_t attr = H5Aopen(file, name, H5P_DEFAULT);
    ASSERT_GE(attr, 0) << name;
    const hid_t type = H5Aget_type(attr);
    equal = H5Tequal(type, want) > 0;
    H5Tclose(type);
    H5Aclose(attr);
  });
  return equal;
}

// What a version-3 writer left: no tokenizer attributes, format_version 3, and the
// meta_checksum of the version-3 record.
void make_version_3(const std::string& path, CheckpointMeta meta) {
  meta.format_version = 3;
  const uint64_t checksum = checkpoint_meta_checksum(meta);
  edit_root(path, [&](hid_t file) {
    for (const char* name : {"tokenizer", "tokenizer_vocab", "tokenizer_merges"})
      ASSERT_GE(H5Adelete(file, name), 0);
    set_root_int(file, "format_version", 3);
    const hid_t attr = H5Aopen(file, "meta_checksum", H5P_DEFAULT);
    ASSERT_GE(attr, 0);
    EXPECT_GE(H5Awrite(attr, H5T_NATIVE_UINT64, &checksum), 0);
    H5Aclose(attr);
  });
}

// What a version-2 writer left: no meta_checksum, format_version 2.
void make_version_2(const std::string& path) {
  edit_root(path, [](hid_t file) {
    for (const char* name : {"tokenizer", "tokenizer_vocab", "tokenizer_merges", "meta_checksum"})
      ASSERT_GE(H5Adelete(file, name), 0);
    set_root_int(file, "format_version", 2);
  });
}

// What a version-1 writer left: no optimizer_steps, no meta_checksum, format_version 1.
void make_version_1(const std::string& path) {
  edit_root(path, [](hid_t file) {
    for (const char* name :
         {"tokenizer", "tokenizer_vocab", "tokenizer_merges", "optimizer_steps", "meta_checksum"})
      ASSERT_GE(H5Adelete(file, name), 0);
    set_root_int(file, "format_version", 1);
  });
}

std::string fixture_v1() {
  return testing::source_dir() + "/tests/fixtures/gpt_fd280f6/checkpoint_v1.h5";
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string path;
    if (world_rank() == 0) {
      std::string tmpl = (fs::temp_directory_path() / "ph_ckpt_XXXXXX").string();
      if (mkdtemp(tmpl.data())) path = tmpl;
    }
    dir_ = broadcast(path);
    ASSERT_FALSE(dir_.empty());
    wte_ = make_full("/model/wte", {7, 5}, 1);
    q_ = make_full("/model/h.0.attn.q.weight", {6, 4}, 2);
    bias_ = make_full("/model/h.0.ln1.bias", {5}, 3);
    scale_ = make_full("/model/scale", {}, 4);
    m_wte_ = make_full("/optim/m/wte", {7, 5}, 5);
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) fs::remove_all(dir_);
  }

  // Rank 0 does fn (a file manipulation) once every rank is done with the files; the others
  // wait for it.
  void on_root(const std::function<void()>& fn) {
    MPI_Barrier(MPI_COMM_WORLD);
    if (world_rank() == 0) fn();
    MPI_Barrier(MPI_COMM_WORLD);
  }

  // Saves the standard tensors, sharded over the ranks in several ways, at `step`.
  std::string save_standard(int64_t step, int keep_last = 0) {
    Local a = part_of(wte_, 0), b = part_of(q_, 1), c = part_of(bias_, 0), d = part_of(scale_, -1),
          e = part_of(m_wte_, -1);
    const bool root = world_rank() == 0;
    return save_checkpoint(dir_, sample_meta(step),
                           {slice_of(wte_, a), slice_of(q_, b), slice_of(bias_, c),
                            slice_of(scale_, d, root), slice_of(m_wte_, e, root)},
                           MPI_COMM_WORLD, keep_last);
  }

  // Loads the standard tensors in another sharding and checks every bit.
  void expect_standard(const std::string& path) {
    Local a = part_of(wte_, 1), b = part_of(q_, 0), c = part_of(bias_, -1), d = part_of(scale_, -1),
          e = part_of(m_wte_, 0);
    const Local want_a = a, want_b = b, want_c = c, want_d = d, want_e = e;
    for (Local* l : {&a, &b, &c, &d, &e}) std::fill(l->data.begin(), l->data.end(), 0.5f);
    const bool root = world_rank() == 0;
    load_checkpoint(path,
                    {slice_of(wte_, a), slice_of(q_, b), slice_of(bias_, c, root),
                     slice_of(scale_, d, root), slice_of(m_wte_, e)},
                    MPI_COMM_WORLD);
    EXPECT_TRUE(same_bits(a.data, want_a.data));
    EXPECT_TRUE(same_bits(b.data, want_b.data));
    EXPECT_TRUE(same_bits(c.data, want_c.data));
    EXPECT_TRUE(same_bits(d.data, want_d.data));
    EXPECT_TRUE(same_bits(e.data, want_e.data));
  }

  std::vector<std::string> files() const {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(dir_)) out.push_back(e.path().filename());
    std::sort(out.begin(), out.end());
    return out;
  }

  std::string dir_;
  Full wte_, q_, bias_, scale_, m_wte_;
};

TEST(CheckpointChecksum, TermIsSplitmix64OfIndexTimesGammaXorBits) {
  // splitmix64's first output from state 0 is the finalizer of the golden gamma.
  EXPECT_EQ(checkpoint_checksum_term(1, 0), 0xE220A8397B1DCDAFULL);
  EXPECT_EQ(checkpoint_checksum_term(0, 0), 0u);
  EXPECT_NE(checkpoint_checksum_term(0, 1), checkpoint_checksum_term(1, 1));
  EXPECT_NE(checkpoint_checksum_term(5, std::bit_cast<uint32_t>(0.0f)),
            checkpoint_checksum_term(5, std::bit_cast<uint32_t>(-0.0f)));
}

TEST(CheckpointFileName, IsZeroPaddedStep) {
  EXPECT_EQ(checkpoint_file_name(42), "step_00000042.h5");
  EXPECT_EQ(checkpoint_file_name(123456789), "step_123456789.h5");
}

TEST_F(CheckpointTest, RoundTripIsBitExactAcrossShardings) {
  const std::string path = save_standard(42);
  EXPECT_EQ(path, (fs::path(dir_) / "step_00000042.h5").string());
  EXPECT_EQ(latest_checkpoint(dir_), path);
  expect_standard(path);
  verify_checkpoint(path, MPI_COMM_WORLD);
}

// best.h5 and the like: written atomically beside the step checkpoints, never named by
// `latest`, never pruned, never resumed from; the step save does not touch it.
TEST_F(CheckpointTest, ANamedCheckpointStandsApartFromTheStepCheckpoints) {
  const std::string step3 = save_standard(3);
  Local a = part_of(wte_, 0);
  CheckpointMeta m = sample_meta(5);
  const std::string best =
      save_named_checkpoint(dir_, "best.h5", m, {slice_of(wte_, a)}, MPI_COMM_WORLD);
  EXPECT_EQ(best, (fs::path(dir_) / "best.h5").string());
  EXPECT_EQ(latest_checkpoint(dir_), step3);
  EXPECT_EQ(step_checkpoints(dir_).size(), 1u);
  EXPECT_EQ(read_checkpoint_meta(best, MPI_COMM_WORLD).step, 5);
  // Saving again replaces it; pruning the step checkpoints (keep_last 1) leaves it alone.
  m.step = 6;
  save_named_checkpoint(dir_, "best.h5", m, {slice_of(wte_, a)}, MPI_COMM_WORLD);
  save_standard(7, 1);
  EXPECT_EQ(files(), (std::vector<std::string>{"best.h5", "latest", "step_00000007.h5"}));
  EXPECT_EQ(read_checkpoint_meta(best, MPI_COMM_WORLD).step, 6);
  verify_checkpoint(best, MPI_COMM_WORLD);
  EXPECT_EQ(find_resume_checkpoint(dir_, MPI_COMM_WORLD).path,
            (fs::path(dir_) / "step_00000007.h5").string());
  for (const std::string bad : {"step_00000009.h5", "best", "sub/best.h5", ".h5"})
    expect_error<std::invalid_argument>(
        [&] { save_named_checkpoint(dir_, bad, m, {slice_of(wte_, a)}, MPI_COMM_WORLD); },
        {"cannot save checkpoint " + bad + " in " + dir_ +
         ": the name must be a file name ending in .h5 and not step_*"});
  EXPECT_EQ(files(), (std::vector<std::string>{"best.h5", "latest", "step_00000007.h5"}));
}

TEST_F(CheckpointTest, MetaRoundTrips) {
  CheckpointMeta m = sample_meta(7);
  m.config_yaml.clear();
  while (m.config_yaml.size() < 200000)
    m.config_yaml += "key_" + std::to_string(m.config_yaml.size()) + ": ü\n";
  Local a = part_of(wte_, 0);
  const std::string path = save_checkpoint(dir_, m, {slice_of(wte_, a)}, MPI_COMM_WORLD, 0);
  const CheckpointMeta r = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(r.format_version, kCheckpointFormatVersion);
  EXPECT_EQ(r.step, 7);
  EXPECT_EQ(r.optimizer_steps, 3);
  EXPECT_EQ(r.consumed_samples, m.consumed_samples);
  EXPECT_EQ(r.seed, m.seed);
  EXPECT_EQ(r.config_yaml, m.config_yaml);
  EXPECT_EQ(r.layout, m.layout);
  EXPECT_EQ(r.model_summary, m.model_summary);
  EXPECT_EQ(r.best_eval, m.best_eval);
}

TEST_F(CheckpointTest, EmptyTextAndNoTensorsRoundTrip) {
  CheckpointMeta m;
  m.step = 3;
  const std::string path = save_checkpoint(dir_, m, {}, MPI_COMM_WORLD, 0);
  const CheckpointMeta r = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(r.step, 3);
  EXPECT_EQ(r.config_yaml, "");
  EXPECT_EQ(r.layout, "");
}

TEST_F(CheckpointTest, SliceLoadReadsTheRightBlock) {
  const std::string path = save_standard(1);
  // Every rank loads the same interior block: the blocks do not tile the tensor, so the
  // checksum is verified over the whole dataset.
  Local block = extract(q_, {1, 1}, {3, 2});
  const std::vector<float> want = block.data;
  std::fill(block.data.begin(), block.data.end(), 0.0f);
  load_checkpoint(path, {slice_of(q_, block)}, MPI_COMM_WORLD);
  EXPECT_TRUE(same_bits(block.data, want));
  EXPECT_EQ(block.data[0], q_.values[1 * 4 + 1]);

  Local rows = extract(wte_, {2, 0}, {3, 5});
  const std::vector<float> want_rows = rows.data;
  std::fill(rows.data.begin(), rows.data.end(), 0.0f);
  load_checkpoint(path, {slice_of(wte_, rows, world_rank() == 0)}, MPI_COMM_WORLD);
  EXPECT_TRUE(same_bits(rows.data, want_rows));

  Local empty = extract(wte_, {7, 0}, {0, 5});
  load_checkpoint(path, {slice_of(wte_, empty)}, MPI_COMM_WORLD);
}

TEST_F(CheckpointTest, LargeTensorIsVerifiedInPieces) {
  // More than 2^22 elements: a partial load verifies the file in several pieces, and the
  // checksum of a block is computed by several threads.
  Full big = make_full("/model/big", {4200, 1024}, 11);
  Local mine = part_of(big, 1);
  const std::string path =
      save_checkpoint(dir_, sample_meta(1), {slice_of(big, mine)}, MPI_COMM_WORLD, 0);
  Local corner = extract(big, {4199, 1000}, {1, 24});
  const std::vector<float> want = corner.data;
  load_checkpoint(path, {slice_of(big, corner)}, MPI_COMM_WORLD);
  EXPECT_TRUE(same_bits(corner.data, want));
  verify_checkpoint(path, MPI_COMM_WORLD);

  on_root([&] {  // flip a bit near the end of the data, in the last piece
    const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t dset = H5Dopen2(file, "/model/big", H5P_DEFAULT);
    const haddr_t offset = H5Dget_offset(dset);
    H5Dclose(dset);
    H5Fclose(file);
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(static_cast<std::streamoff>(offset + 4 * (4200 * 1024 - 3)));
    f.put('\x7f');
  });
  expect_error<InputError>([&] { load_checkpoint(path, {slice_of(big, corner)}, MPI_COMM_WORLD); },
                           {"tensor /model/big fails its checksum (file corrupted)"});
  Local again = part_of(big, 0);
  expect_error<InputError>([&] { load_checkpoint(path, {slice_of(big, again)}, MPI_COMM_WORLD); },
                           {"tensor /model/big fails its checksum (file corrupted)"});
}

TEST_F(CheckpointTest, ZeroSizedTensorsRoundTrip) {
  Full empty = make_full("/model/empty", {0, 5}, 1), none = make_full("/model/none", {3, 0}, 1);
  Local a = part_of(empty, 0), b = part_of(none, 0);
  const std::string path = save_checkpoint(
      dir_, sample_meta(1), {slice_of(empty, a), slice_of(none, b)}, MPI_COMM_WORLD, 0);
  load_checkpoint(path, {slice_of(empty, a), slice_of(none, b)}, MPI_COMM_WORLD);
  verify_checkpoint(path, MPI_COMM_WORLD);
  EXPECT_NE(describe_checkpoint(path, MPI_COMM_WORLD).find("[0, 5]"), std::string::npos);
}

TEST_F(CheckpointTest, KeepLastPrunesTheOldestAndLatestPointsToTheNewest) {
  for (int64_t step = 1; step <= 4; ++step) save_standard(step, 2);
  on_root([&] { std::ofstream(fs::path(dir_) / "step_00000003.h5.tmp") << "stale"; });
  const std::string newest = save_standard(5, 2);
  if (world_rank() == 0) {
    EXPECT_EQ(files(),
              (std::vector<std::string>{"latest", "step_00000004.h5", "step_00000005.h5"}));
  }
  EXPECT_EQ(latest_checkpoint(dir_), newest);
  std::ifstream pointer(fs::path(dir_) / "latest");
  std::string content((std::istreambuf_iterator<char>(pointer)), std::istreambuf_iterator<char>());
  EXPECT_EQ(content, "step_00000005.h5\n");
  expect_standard(newest);

  // A run resumed from an older step: the file it writes is kept, and so are those of later
  // steps (not its history; they used to be pruned, the oldest first); pruning goes on below
  // its own step, and a later step is pruned once the run has passed it.
  const std::string older = save_standard(2, 2);
  if (world_rank() == 0) {
    EXPECT_EQ(files(), (std::vector<std::string>{"latest", "step_00000002.h5", "step_00000004.h5",
                                                 "step_00000005.h5"}));
  }
  EXPECT_EQ(latest_checkpoint(dir_), older);
  save_standard(3, 2);
  save_standard(6, 2);
  if (world_rank() == 0) {
    EXPECT_EQ(files(),
              (std::vector<std::string>{"latest", "step_00000005.h5", "step_00000006.h5"}));
  }
}

TEST_F(CheckpointTest, KeepLastZeroKeepsAll) {
  for (int64_t step = 1; step <= 4; ++step) save_standard(step, 0);
  if (world_rank() == 0) {
    EXPECT_EQ(files().size(), 5u);
  }
}

TEST_F(CheckpointTest, FailedSavesLeaveThePreviousCheckpointUntouched) {
  const std::string good = save_standard(1, 3);
  const std::string bad = (fs::path(dir_) / "step_00000002.h5").string();
  auto expect_untouched = [&] {
    MPI_Barrier(MPI_COMM_WORLD);
    EXPECT_EQ(latest_checkpoint(dir_), good);
    if (world_rank() == 0) {
      for (const std::string& f : files()) EXPECT_FALSE(f.ends_with(".tmp")) << f;
      EXPECT_FALSE(fs::is_regular_file(bad));
    }
    expect_standard(good);
  };

  // A block that does not fit the shape: caught before any file is made.
  Local a = part_of(wte_, 0);
  TensorSlice overflow = slice_of(wte_, a);
  overflow.count[0] += 1;
  expect_error<std::invalid_argument>(
      [&] { save_checkpoint(dir_, sample_meta(2), {overflow}, MPI_COMM_WORLD, 3); },
      {"cannot save checkpoint " + bad, "tensor /model/wte", "exceeds shape [7, 5]"});
  expect_untouched();

  // Writer blocks that do not cover the tensor.
  Local first_row = extract(wte_, {0, 0}, {1, 5});
  expect_error<std::invalid_argument>(
      [&] {
        save_checkpoint(dir_, sample_meta(2), {slice_of(wte_, first_row, world_rank() == 0)},
                        MPI_COMM_WORLD, 3);
      },
      {"the writer blocks of tensor /model/wte cover 5 of its 35 elements"});
  expect_untouched();

  // A tensor inside another one.
  Full x = make_full("/model/x", {2}, 9), xy = make_full("/model/x/y", {2}, 9);
  Local lx = part_of(x, -1), lxy = part_of(xy, -1);
  const bool root = world_rank() == 0;
  expect_error<std::invalid_argument>(
      [&] {
        save_checkpoint(dir_, sample_meta(2), {slice_of(x, lx, root), slice_of(xy, lxy, root)},
                        MPI_COMM_WORLD, 3);
      },
      {"tensor /model/x/y lies inside tensor /model/x"});
  expect_untouched();

  // HDF5 refuses a tensor of more than 32 dimensions, after the temporary exists and the
  // first tensor is written: it stands for a write that fails (an IoError, like a full disk).
  Full deep = make_full("/model/deep", std::vector<int64_t>(33, 1), 9);
  Local ldeep = part_of(deep, -1), la = part_of(wte_, 0);
  expect_error<IoError>(
      [&] {
        save_checkpoint(dir_, sample_meta(2), {slice_of(wte_, la), slice_of(deep, ldeep, root)},
                        MPI_COMM_WORLD, 3);
      },
      {"cannot save checkpoint " + bad + ": cannot write tensor /model/deep to " + bad + ".tmp: "});
  expect_untouched();

  // A file size limit (ulimit -f) too small for the checkpoint is found before writing.
  Full big = make_full("/model/big", {1024, 512}, 7);
  Local lbig = part_of(big, 0);
  rlimit old_limit{};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  rlimit small = old_limit;
  small.rlim_cur = std::min<rlim_t>(old_limit.rlim_max, rlim_t{1} << 20);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  expect_error<IoError>(
      [&] { save_checkpoint(dir_, sample_meta(2), {slice_of(big, lbig)}, MPI_COMM_WORLD, 3); },
      {"cannot save checkpoint " + bad + ": the checkpoint needs about ",
       " MiB, more than the file size limit (ulimit -f) of 1 MiB"});
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  expect_untouched();

  // The temporary name is taken by a directory.
  on_root([&] { fs::create_directories(fs::path(bad + ".tmp") / "sub"); });
  expect_error<IoError>([&] { save_standard(2, 3); },
                        {bad + ".tmp exists and is not a regular file"});
  on_root([&] { fs::remove_all(bad + ".tmp"); });
  expect_untouched();

  // The final name is taken by a directory: the rename fails.
  on_root([&] { fs::create_directories(fs::path(bad) / "sub"); });
  expect_error<IoError>([&] { save_standard(2, 3); }, {"cannot rename " + bad + ".tmp to " + bad});
  on_root([&] { fs::remove_all(bad); });
  expect_untouched();

  // The directory cannot be created.
  on_root([&] { std::ofstream(fs::path(dir_) / "plain") << "x"; });
  const std::string blocked = (fs::path(dir_) / "plain" / "sub").string();
  expect_error<IoError>(
      [&] { save_checkpoint(blocked, sample_meta(2), {slice_of(wte_, a)}, MPI_COMM_WORLD, 3); },
      {"cannot save checkpoint", "cannot create directory " + blocked});
  expect_untouched();

  if (geteuid() != 0) {  // permissions do not bind root
    on_root([&] { fs::permissions(dir_, fs::perms::owner_read | fs::perms::owner_exec); });
    expect_error<IoError>([&] { save_standard(2, 3); }, {"cannot save checkpoint " + bad});
    on_root([&] { fs::permissions(dir_, fs::perms::owner_all); });
    expect_untouched();
  }
}

TEST_F(CheckpointTest, InvalidTensorListsAreRejected) {
  Local a = part_of(wte_, 0);
  auto save = [&](std::vector<TensorSlice> t) {
    save_checkpoint(dir_, sample_meta(1), t, MPI_COMM_WORLD, 0);
  };
  TensorSlice s = slice_of(wte_, a);
  expect_error<std::invalid_argument>([&] { save({s, s}); }, {"tensor /model/wte is listed twice"});
  for (const char* name : {"model/wte", "/model//wte", "/model/./wte", "/", "/model/"}) {
    TensorSlice n = s;
    n.name = name;
    expect_error<std::invalid_argument>([&] { save({n}); }, {"absolute HDF5 path"});
  }
  TensorSlice dims = s;
  dims.offset = {0};
  expect_error<std::invalid_argument>([&] { save({dims}); }, {"offset has 1 dims, the shape 2"});
  TensorSlice null = s;
  null.data = nullptr;
  expect_error<std::invalid_argument>([&] { save({null}); }, {"data is null"});
  CheckpointMeta future = sample_meta(1);
  future.format_version = kCheckpointFormatVersion + 1;
  expect_error<std::invalid_argument>(
      [&] { save_checkpoint(dir_, future, {s}, MPI_COMM_WORLD, 0); },
      {"format version " + std::to_string(kCheckpointFormatVersion + 1) +
       " requested; this polyhead writes version " + std::to_string(kCheckpointFormatVersion)});
  for (int64_t bad : {int64_t{-1}, int64_t{6}}) {
    CheckpointMeta m = sample_meta(5);
    m.optimizer_steps = bad;
    expect_error<std::invalid_argument>(
        [&] { save_checkpoint(dir_, m, {s}, MPI_COMM_WORLD, 0); },
        {"optimizer_steps " + std::to_string(bad) + " is not in [0, step 5]"});
  }
  expect_error<std::invalid_argument>(
      [&] {
        load_checkpoint(dir_ + "/x.h5", {s, s}, MPI_COMM_WORLD);
      },
      {"cannot load checkpoint", "listed twice"});
  if (world_rank() == 0) {
    EXPECT_TRUE(files().empty());
  }
}

// Flips one byte in the middle of a dataset's raw data.
void corrupt(const std::string& path, const std::string& dataset) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  const hid_t dset = H5Dopen2(file, dataset.c_str(), H5P_DEFAULT);
  ASSERT_GE(dset, 0);
  const haddr_t offset = H5Dget_offset(dset);
  H5Dclose(dset);
  H5Fclose(file);
  ASSERT_NE(offset, HADDR_UNDEF);
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset + 4 * 17 + 1));
  const char c = static_cast<char>(f.get());
  f.seekp(static_cast<std::streamoff>(offset + 4 * 17 + 1));
  f.put(static_cast<char>(c ^ 0x10));
  ASSERT_TRUE(f.good());
}

TEST_F(CheckpointTest, CorruptedDataFailsItsChecksum) {
  const std::string path = save_standard(3);
  on_root([&] { corrupt(path, "/model/wte"); });
  expect_error<InputError>(
      [&] { expect_standard(path); },
      {"checkpoint " + path + ": tensor /model/wte fails its checksum (file corrupted)"});
  expect_error<InputError>([&] { verify_checkpoint(path, MPI_COMM_WORLD); },
                           {"tensor /model/wte fails its checksum (file corrupted)"});
  // The other tensors still load.
  Local b = part_of(bias_, 0);
  load_checkpoint(path, {slice_of(bias_, b)}, MPI_COMM_WORLD);
}

TEST_F(CheckpointTest, TruncatedFileIsUnreadable) {
  const std::string path = save_standard(3);
  for (uintmax_t keep : {uintmax_t{0}, uintmax_t{100}, uintmax_t{0}}) {
    on_root([&] { fs::resize_file(path, keep ? keep : fs::file_size(path) / 2); });
    const std::vector<std::string> msg = {
        "checkpoint " + path + " is unreadable (truncated or not a polyhead checkpoint): "};
    expect_error<InputError>([&] { expect_standard(path); }, msg);
    expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); }, msg);
    expect_error<InputError>([&] { describe_checkpoint(path, MPI_COMM_WORLD); }, msg);
  }
}

TEST_F(CheckpointTest, ShapeMismatchNamesBothShapes) {
  const std::string path = save_standard(3);
  Full big = make_full("/model/wte", {8, 5}, 1);
  Local l = part_of(big, 0);
  expect_error<InputError>([&] { load_checkpoint(path, {slice_of(big, l)}, MPI_COMM_WORLD); },
                           {"checkpoint " + path +
                            ": tensor /model/wte has shape [7, 5] in the "
                            "file, expected [8, 5]"});
  Full flat = make_full("/model/h.0.ln1.bias", {1, 5}, 1);
  Local f = part_of(flat, -1);
  expect_error<InputError>([&] { load_checkpoint(path, {slice_of(flat, f)}, MPI_COMM_WORLD); },
                           {"has shape [5] in the file, expected [1, 5]"});
}

TEST_F(CheckpointTest, MissingTensorIsNamed) {
  const std::string path = save_standard(3);
  for (const char* name : {"/model/nope", "/optim/v/wte", "/nothing/at/all"}) {
    Full t = make_full(name, {2}, 1);
    Local l = part_of(t, -1);
    expect_error<InputError>([&] { load_checkpoint(path, {slice_of(t, l)}, MPI_COMM_WORLD); },
                             {"checkpoint " + path + " has no tensor " + name});
  }
  Full group = make_full("/model", {2}, 1);
  Local l = part_of(group, -1);
  expect_error<InputError>([&] { load_checkpoint(path, {slice_of(group, l)}, MPI_COMM_WORLD); },
                           {"has no tensor /model"});
}

TEST_F(CheckpointTest, GarbageMissingAndForeignFiles) {
  const std::string garbage = (fs::path(dir_) / "garbage.h5").string();
  on_root([&] {
    std::ofstream out(garbage);
    for (int i = 0; i < 200; ++i) out << "this is not an HDF5 file\n";
  });
  const std::string unreadable = " is unreadable (truncated or not a polyhead checkpoint): ";
  Local a = part_of(wte_, 0);
  expect_error<InputError>([&] { load_checkpoint(garbage, {slice_of(wte_, a)}, MPI_COMM_WORLD); },
                           {"checkpoint " + garbage + unreadable});
  expect_error<InputError>([&] { describe_checkpoint(garbage, MPI_COMM_WORLD); },
                           {"checkpoint " + garbage + unreadable});

  const std::string missing = (fs::path(dir_) / "missing.h5").string();
  expect_error<InputError>([&] { read_checkpoint_meta(missing, MPI_COMM_WORLD); },
                           {"checkpoint " + missing + " does not exist"});

  // A valid HDF5 file that is not a checkpoint.
  const std::string foreign = (fs::path(dir_) / "foreign.h5").string();
  on_root([&] {
    const hid_t f = H5Fcreate(foreign.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ASSERT_GE(f, 0);
    H5Fclose(f);
  });
  expect_error<InputError>([&] { read_checkpoint_meta(foreign, MPI_COMM_WORLD); },
                           {"checkpoint " + foreign + unreadable, "'format_version'"});
}

TEST_F(CheckpointTest, NewerFormatVersionIsRefused) {
  const std::string path = save_standard(3);
  on_root([&] { edit_root(path, [](hid_t f) { set_root_int(f, "format_version", 6); }); });
  const std::vector<std::string> msg = {"checkpoint " + path +
                                        " has format version 6; this polyhead reads versions up "
                                        "to 5 (use a newer polyhead)"};
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); }, msg);
  expect_error<InputError>([&] { expect_standard(path); }, msg);
  expect_error<InputError>([&] { describe_checkpoint(path, MPI_COMM_WORLD); }, msg);
  expect_error<InputError>([&] { verify_checkpoint(path, MPI_COMM_WORLD); }, msg);
}

TEST_F(CheckpointTest, OptimizerStepsRoundTrip) {
  EXPECT_EQ(kCheckpointFormatVersion, 5);
  Local a = part_of(wte_, 0);
  for (const int64_t optimizer_steps : {int64_t{0}, int64_t{4}, int64_t{9}}) {
    CheckpointMeta m = sample_meta(9);
    m.optimizer_steps = optimizer_steps;
    const std::string path = save_checkpoint(dir_, m, {slice_of(wte_, a)}, MPI_COMM_WORLD, 0);
    const CheckpointMeta r = read_checkpoint_meta(path, MPI_COMM_WORLD);
    EXPECT_EQ(r.format_version, 5);
    EXPECT_EQ(r.step, 9);
    EXPECT_EQ(r.optimizer_steps, optimizer_steps);
  }
  // Stored as a 64-bit signed integer.
  if (world_rank() == 0) {
    const std::string path = (fs::path(dir_) / checkpoint_file_name(9)).string();
    EXPECT_TRUE(root_attribute_has_type(path, "optimizer_steps", H5T_STD_I64LE));
  }
}

TEST_F(CheckpointTest, Version1FileLoadsWithOptimizerStepsEqualToStep) {
  const std::string path = save_standard(7);  // optimizer_steps 3
  on_root([&] { make_version_1(path); });
  const CheckpointMeta r = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(r.format_version, 1);
  EXPECT_EQ(r.step, 7);
  EXPECT_EQ(r.optimizer_steps, 7);
  EXPECT_EQ(r.seed, sample_meta(7).seed);
  expect_standard(path);
  verify_checkpoint(path, MPI_COMM_WORLD);
  const std::string text = describe_checkpoint(path, MPI_COMM_WORLD);
  EXPECT_NE(text.find("format version    1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("optimizer steps   7 ("), std::string::npos) << text;
}

TEST_F(CheckpointTest, CommittedVersion1FileLoads) {
  const std::string path = fixture_v1();
  const CheckpointMeta r = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(r.format_version, 1);
  EXPECT_EQ(r.step, 20);
  EXPECT_EQ(r.optimizer_steps, 20);
  EXPECT_EQ(r.consumed_samples, 160u);
  EXPECT_EQ(r.seed, 1337u);
  EXPECT_EQ(r.layout, "dp=1 tp=1 world=1");
  EXPECT_NE(r.config_yaml.find("type: gpt"), std::string::npos);
  verify_checkpoint(path, MPI_COMM_WORLD);
  // A block loads like the same part of the whole tensor (both checksum-verified).
  const Full shape{"/model/wte", {64, 32}, std::vector<float>(64 * 32, 0.0f)};
  Local all = part_of(shape, -1), mine = part_of(shape, 1);
  load_checkpoint(path, {slice_of(shape, all, world_rank() == 0)}, MPI_COMM_WORLD);
  load_checkpoint(path, {slice_of(shape, mine)}, MPI_COMM_WORLD);
  const Full wte{"/model/wte", {64, 32}, all.data};
  EXPECT_TRUE(same_bits(mine.data, part_of(wte, 1).data));
  EXPECT_TRUE(std::any_of(all.data.begin(), all.data.end(), [](float x) { return x != 0.0f; }));
  EXPECT_NE(describe_checkpoint(path, MPI_COMM_WORLD).find("optimizer steps   20 ("),
            std::string::npos);
}

TEST_F(CheckpointTest, Version3FileLoadsAsByteLevel) {
  const std::string path = save_standard(7);
  on_root([&] { make_version_3(path, read_checkpoint_meta(path, MPI_COMM_SELF)); });
  const CheckpointMeta r = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(r.format_version, 3);
  EXPECT_EQ(r.tokenizer, "bytes");
  EXPECT_EQ(r.tokenizer_vocab, "");
  EXPECT_EQ(r.step, 7);
  expect_standard(path);
  verify_checkpoint(path, MPI_COMM_WORLD);
  const std::string text = describe_checkpoint(path, MPI_COMM_WORLD);
  EXPECT_NE(text.find("tokenizer         bytes (not stored before format version 4"),
            std::string::npos)
      << text;
  // Version 4 requires the tokenizer attributes.
  on_root([&] { edit_root(path, [](hid_t f) { set_root_int(f, "format_version", 4); }); });
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); },
                           {"checkpoint " + path +
                            " is unreadable (truncated or not a polyhead checkpoint): the file "
                            "has no attribute 'tokenizer'"});
}

TEST_F(CheckpointTest, TokenizerTravelsInTheAttributes) {
  CheckpointMeta m = sample_meta(5);
  m.tokenizer = "tiktoken";
  m.tokenizer_vocab = std::string(300000, 'Q') + " 0\n";  // past HDF5's 64 KiB compact limit
  m.tokenizer_merges = "";
  Local a = part_of(wte_, 0);
  const std::string path = save_checkpoint(dir_, m, {slice_of(wte_, a)}, MPI_COMM_WORLD, 0);
  const CheckpointMeta r = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(r.tokenizer, "tiktoken");
  EXPECT_EQ(r.tokenizer_vocab, m.tokenizer_vocab);
  EXPECT_EQ(r.tokenizer_merges, "");
  const std::string text = describe_checkpoint(path, MPI_COMM_WORLD);
  EXPECT_NE(text.find("tokenizer         tiktoken (rank file 300003 bytes)"), std::string::npos)
      << text;
  const CheckpointMeta bpe = read_checkpoint_meta(save_standard(6), MPI_COMM_WORLD);
  EXPECT_EQ(bpe.tokenizer_vocab, sample_meta(6).tokenizer_vocab);
  EXPECT_EQ(bpe.tokenizer_merges, sample_meta(6).tokenizer_merges);
}

TEST_F(CheckpointTest, Version2NeedsAValidOptimizerSteps) {
  const std::string path = save_standard(7);
  on_root([&] { make_version_2(path); });
  EXPECT_EQ(read_checkpoint_meta(path, MPI_COMM_WORLD).format_version, 2);
  const std::string unreadable =
      "checkpoint " + path + " is unreadable (truncated or not a polyhead checkpoint): ";
  on_root([&] { edit_root(path, [](hid_t f) { set_root_int(f, "optimizer_steps", 8); }); });
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); },
                           {unreadable + "optimizer_steps 8 is not in [0, step 7]"});
  on_root([&] { edit_root(path, [](hid_t f) { set_root_int(f, "optimizer_steps", -1); }); });
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); },
                           {unreadable + "optimizer_steps -1 is not in [0, step 7]"});
  on_root([&] { edit_root(path, [](hid_t f) { ASSERT_GE(H5Adelete(f, "optimizer_steps"), 0); }); });
  const std::vector<std::string> msg = {unreadable + "the file has no attribute 'optimizer_steps'"};
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); }, msg);
  expect_error<InputError>([&] { expect_standard(path); }, msg);
  expect_error<InputError>([&] { verify_checkpoint(path, MPI_COMM_WORLD); }, msg);
}

TEST_F(CheckpointTest, LatestPointer) {
  EXPECT_EQ(latest_checkpoint(dir_), "");
  EXPECT_EQ(latest_checkpoint(dir_ + "/absent"), "");
  MPI_Barrier(MPI_COMM_WORLD);
  on_root([&] { std::ofstream(fs::path(dir_) / "latest") << "step_00000009.h5\n"; });
  expect_error<InputError>([&] { latest_checkpoint(dir_); }, {"checkpoint pointer " + dir_ +
                                                              "/latest names step_00000009.h5, "
                                                              "which does not exist"});
  MPI_Barrier(MPI_COMM_WORLD);
  on_root([&] { std::ofstream(fs::path(dir_) / "latest") << "\n"; });
  expect_error<InputError>([&] { latest_checkpoint(dir_); }, {"is malformed"});
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string path = save_standard(9);
  EXPECT_EQ(latest_checkpoint(dir_), path);
}

TEST_F(CheckpointTest, DescribeListsTensorsStepAndConfig) {
  Full h2 = make_full("/model/h.2.x", {3}, 1), h10 = make_full("/model/h.10.x", {3}, 1);
  Local a = part_of(wte_, 0), b = part_of(h10, 0), c = part_of(h2, 0), d = part_of(m_wte_, 0);
  const std::string path =
      save_checkpoint(dir_, sample_meta(42),
                      {slice_of(wte_, a), slice_of(h10, b), slice_of(h2, c), slice_of(m_wte_, d)},
                      MPI_COMM_WORLD, 0);
  const std::string text = describe_checkpoint(path, MPI_COMM_WORLD);
  for (const std::string& part :
       {std::string("step              42\n"), std::string("optimizer steps   21\n"),
        std::string("consumed samples  9223372036854775813"),
        std::string("seed              18446744073709551615"), std::string("format version    5\n"),
        std::string("best evaluation   metric=val_loss value=1.25 step=4 stale=1\n"),
        std::string("tokenizer         bpe (vocab.json 37 bytes, merges.txt 19 bytes)\n"),
        std::string("layout            dp=1 tp=1"), std::string("gpt L=2 d=128 H=4 V=256 T=64"),
        std::string("/model/wte"), std::string("[7, 5]"), std::string("/optim/m/wte"),
        std::string("model parameters  41 "), std::string("tensors           4 (76 elements)"),
        std::string("  model:\n    type: gpt")})
    EXPECT_NE(text.find(part), std::string::npos) << part << "\nin:\n" << text;
  EXPECT_LT(text.find("/model/h.2.x"), text.find("/model/h.10.x")) << text;
}

// The fenced ```python block of README.md that defines `function`.
std::string readme_python_block(const std::string& function) {
  std::ifstream in(testing::source_dir() + "/README.md");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t def = text.find("def " + function + "(");
  if (def == std::string::npos) return "";
  const size_t open = text.rfind("```python\n", def), close = text.find("\n```", def);
  if (open == std::string::npos || close == std::string::npos) return "";
  return text.substr(open + 10, close + 1 - (open + 10));
}

// Runs the README's checksum recipes (the block itself, taken from README.md) with h5py on a
// file polyhead wrote, then changes two attributes the way the README says; polyhead must
// accept the result.
TEST_F(CheckpointTest, H5pyReadsTheFileWithTheReadmeRecipes) {
  const std::string python = "env -u PYTHONPATH -u PYTHONHOME /usr/bin/python3";
  std::string have = "0";
  if (world_rank() == 0)
    have =
        std::system((python + " -c 'import h5py, numpy' >/dev/null 2>&1").c_str()) == 0 ? "1" : "0";
  if (broadcast(have) != "1") GTEST_SKIP() << "/usr/bin/python3 cannot import h5py and numpy";
  const std::string recipe = readme_python_block("meta_checksum");
  ASSERT_NE(recipe.find("def checksum("), std::string::npos) << recipe;
  const std::string path = save_standard(42);
  std::string output;
  if (world_rank() == 0) {
    std::ofstream(fs::path(dir_) / "recipe.py") << recipe;
    const std::string script = (fs::path(dir_) / "read.py").string();
    const std::string out = (fs::path(dir_) / "read.out").string();
    std::ofstream(script) << R"(import sys, h5py, numpy as np
sys.path.insert(0, sys.argv[2])
from recipe import checksum, meta_checksum

with h5py.File(sys.argv[1], 'r') as f:
    w = f['/model/wte']
    assert w.shape == (7, 5) and w.dtype == np.float32, (w.shape, w.dtype)
    assert f['/model/scale'].shape == ()
    assert int(f.attrs['step']) == 42 and int(f.attrs['format_version']) == 5
    assert f.attrs['best_eval'] == 'metric=val_loss value=1.25 step=4 stale=1', f.attrs['best_eval']
    assert f.attrs['tokenizer'] == 'bpe' and f.attrs['tokenizer_merges'].startswith('#version')
    assert int(f.attrs['optimizer_steps']) == 21, f.attrs['optimizer_steps']
    assert f.attrs['layout'].startswith('dp=1 tp=1'), f.attrs['layout']
    assert 'type: gpt' in f.attrs['config']
    assert f.attrs['meta_checksum'].dtype == np.uint64, f.attrs['meta_checksum'].dtype
    names = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    for n in names:
        assert checksum(f[n][()]) == int(f[n].attrs['checksum']), n
    stored = int(f.attrs['meta_checksum'])
    assert meta_checksum(f.attrs) == stored, (meta_checksum(f.attrs), stored)
    print(len(names), int(np.float32(w[2, 3]).view(np.uint32)), int(f.attrs['seed']), stored)

with h5py.File(sys.argv[1], 'r+') as f:
    f.attrs.modify('step', 43)
    f.attrs.modify('layout', 'dp=1 tp=1 edited by h5py')
    f.attrs.modify('meta_checksum', np.uint64(meta_checksum(f.attrs)))
)";
    const int rc = std::system(
        (python + " " + script + " " + path + " " + dir_ + " > " + out + " 2>&1").c_str());
    std::ifstream in(out);
    output.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    EXPECT_EQ(rc, 0) << output;
  }
  output = broadcast(output);
  const std::string want = "5 " + std::to_string(std::bit_cast<uint32_t>(wte_.values[2 * 5 + 3])) +
                           " 18446744073709551615 " +
                           std::to_string(checkpoint_meta_checksum(sample_meta(42))) + "\n";
  EXPECT_EQ(output, want);
  // The attributes h5py changed, with the meta_checksum the recipe computed, are accepted.
  const CheckpointMeta edited = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(edited.step, 43);
  EXPECT_EQ(edited.layout, "dp=1 tp=1 edited by h5py");
  EXPECT_EQ(edited.config_yaml, sample_meta(42).config_yaml);
  verify_checkpoint(path, MPI_COMM_WORLD);
}

// ---------------------------------------------------------------------------------------
// The checksum of the attributes (format 3 on)

// The documented checksum of a record given as (attribute name, value text) pairs.
uint64_t record_checksum(const std::vector<std::pair<std::string, std::string>>& entries) {
  std::string record;
  for (const auto& [name, value] : entries) record += name + '\0' + value + '\0';
  uint64_t sum = 0;
  for (size_t j = 0; j < record.size(); ++j)
    sum += checkpoint_checksum_term(j, static_cast<unsigned char>(record[j]));
  return sum;
}

TEST(CheckpointMetaChecksum, Version4AddsTheTokenizerToTheRecord) {
  CheckpointMeta m;
  m.format_version = 4;
  m.step = 1;
  m.tokenizer = "bpe";
  m.tokenizer_vocab = "{}";
  m.tokenizer_merges = "a b";
  const uint64_t want = record_checksum({{"format_version", "4"},
                                         {"step", "1"},
                                         {"optimizer_steps", "0"},
                                         {"consumed_samples", "0"},
                                         {"seed", "0"},
                                         {"config", ""},
                                         {"layout", ""},
                                         {"model", ""},
                                         {"tokenizer", "bpe"},
                                         {"tokenizer_vocab", "{}"},
                                         {"tokenizer_merges", "a b"}});
  EXPECT_EQ(checkpoint_meta_checksum(m), want);
  CheckpointMeta other = m;
  other.tokenizer_merges = "a c";
  EXPECT_NE(checkpoint_meta_checksum(other), want);
  other = m;
  other.format_version = 3;  // the version-3 record has no tokenizer entries
  m.tokenizer = m.tokenizer_vocab = m.tokenizer_merges = "changed";
  m.format_version = 3;
  EXPECT_EQ(checkpoint_meta_checksum(other), checkpoint_meta_checksum(m));
}

TEST(CheckpointMetaChecksum, Version5AddsTheBestEvaluationToTheRecord) {
  CheckpointMeta m;
  m.format_version = 5;
  m.step = 2;
  m.tokenizer = "bytes";
  m.best_eval = "metric=bleu value=12.5 step=2 stale=0";
  const uint64_t want = record_checksum({{"format_version", "5"},
                                         {"step", "2"},
                                         {"optimizer_steps", "0"},
                                         {"consumed_samples", "0"},
                                         {"seed", "0"},
                                         {"config", ""},
                                         {"layout", ""},
                                         {"model", ""},
                                         {"tokenizer", "bytes"},
                                         {"tokenizer_vocab", ""},
                                         {"tokenizer_merges", ""},
                                         {"best_eval", "metric=bleu value=12.5 step=2 stale=0"}});
  EXPECT_EQ(checkpoint_meta_checksum(m), want);
  CheckpointMeta other = m;
  other.best_eval = "metric=bleu value=12.5 step=2 stale=1";
  EXPECT_NE(checkpoint_meta_checksum(other), want);
  // The version-4 record has no best_eval entry.
  other.format_version = m.format_version = 4;
  m.best_eval = "changed";
  EXPECT_EQ(checkpoint_meta_checksum(other), checkpoint_meta_checksum(m));
}

TEST(CheckpointMetaChecksum, IsTheTermSumOverTheDocumentedRecord) {
  CheckpointMeta m;
  m.format_version = 3;
  m.step = 42;
  m.optimizer_steps = -1;  // not valid in a file, but the record spells a sign
  m.consumed_samples = 18446744073709551615ULL;
  m.seed = 7;
  m.config_yaml = "a: é\n";
  m.layout = "";
  m.model_summary = "m";
  std::string record;  // name NUL value NUL, in the README's order
  for (const auto& [name, value] : std::vector<std::pair<std::string, std::string>>{
           {"format_version", "3"},
           {"step", "42"},
           {"optimizer_steps", "-1"},
           {"consumed_samples", "18446744073709551615"},
           {"seed", "7"},
           {"config", "a: \xc3\xa9\n"},
           {"layout", ""},
           {"model", "m"}})
    record += name + '\0' + value + '\0';
  ASSERT_EQ(record.size(), 119u);
  uint64_t want = 0;
  for (size_t j = 0; j < record.size(); ++j)
    want += checkpoint_checksum_term(j, static_cast<unsigned char>(record[j]));
  EXPECT_EQ(checkpoint_meta_checksum(m), want);
  // Every attribute takes part, and the order of the bytes counts.
  CheckpointMeta other = m;
  other.step = 24;
  EXPECT_NE(checkpoint_meta_checksum(other), want);
  other = m;
  other.layout = "m";
  other.model_summary = "";
  EXPECT_NE(checkpoint_meta_checksum(other), want);
  other = m;
  other.format_version = 2;
  EXPECT_NE(checkpoint_meta_checksum(other), want);
}

TEST_F(CheckpointTest, MetaChecksumIsStoredAsUint64AndMatches) {
  const std::string path = save_standard(42);
  if (world_rank() == 0) {
    EXPECT_EQ(root_uint(path, "meta_checksum"), checkpoint_meta_checksum(sample_meta(42)));
    EXPECT_TRUE(root_attribute_has_type(path, "meta_checksum", H5T_STD_U64LE));
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST_F(CheckpointTest, EditedAttributesFailTheirChecksum) {
  const std::string original = save_standard(7);
  const std::string path = (fs::path(dir_) / "edited.h5").string();
  const std::vector<std::string> msg = {
      "checkpoint " + path +
      ": its attributes fail their checksum (the file was edited or is corrupted)"};
  const std::vector<std::pair<std::string, std::function<void(hid_t)>>> edits = {
      {"step", [](hid_t f) { set_root_int(f, "step", 8); }},
      {"optimizer_steps", [](hid_t f) { set_root_int(f, "optimizer_steps", 2); }},
      {"consumed_samples", [](hid_t f) { set_root_int(f, "consumed_samples", 6); }},
      {"seed", [](hid_t f) { set_root_int(f, "seed", 1337); }},
      {"config", [](hid_t f) { set_root_string(f, "config", "model:\n  type: gpt\n"); }},
      {"layout", [](hid_t f) { set_root_string(f, "layout", "dp=2 tp=1 world=2"); }},
      {"model", [](hid_t f) { set_root_string(f, "model", "gpt L=3 d=128 H=4 V=256 T=64"); }},
      {"tokenizer", [](hid_t f) { set_root_string(f, "tokenizer", "tiktoken"); }},
      {"tokenizer_vocab", [](hid_t f) { set_root_string(f, "tokenizer_vocab", "{}"); }},
      {"tokenizer_merges",
       [](hid_t f) { set_root_string(f, "tokenizer_merges", "#version: 0.2\nĠ t\nĠt é\n"); }},
      {"meta_checksum", [](hid_t f) { set_root_int(f, "meta_checksum", 12345); }},
      // A version-4 file made to look older: the record changes with the version, and only
      // version 3 on writes meta_checksum.
      {"format_version 3", [](hid_t f) { set_root_int(f, "format_version", 3); }},
      {"format_version 2", [](hid_t f) { set_root_int(f, "format_version", 2); }},
      {"format_version 1", [](hid_t f) { set_root_int(f, "format_version", 1); }},
  };
  for (const auto& [what, edit] : edits) {
    SCOPED_TRACE(what);
    on_root([&] {
      fs::copy_file(original, path, fs::copy_options::overwrite_existing);
      edit_root(path, edit);
    });
    expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); }, msg);
    expect_error<InputError>([&] { verify_checkpoint(path, MPI_COMM_WORLD); }, msg);
    expect_error<InputError>([&] { describe_checkpoint(path, MPI_COMM_WORLD); }, msg);
    expect_error<InputError>([&] { expect_standard(path); }, msg);
  }
  // Writing the same value again is no edit.
  on_root([&] {
    fs::copy_file(original, path, fs::copy_options::overwrite_existing);
    edit_root(path, [](hid_t f) { set_root_int(f, "step", 7); });
  });
  EXPECT_EQ(read_checkpoint_meta(path, MPI_COMM_WORLD).step, 7);
  // Version 3 requires the attribute.
  on_root([&] { edit_root(path, [](hid_t f) { ASSERT_GE(H5Adelete(f, "meta_checksum"), 0); }); });
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); },
                           {"checkpoint " + path +
                            " is unreadable (truncated or not a polyhead checkpoint): "
                            "the file has no attribute 'meta_checksum'"});
  // A genuine version-2 file (no meta_checksum) still loads, unchecked.
  on_root([&] {
    fs::copy_file(original, path, fs::copy_options::overwrite_existing);
    make_version_2(path);
    edit_root(path, [](hid_t f) { set_root_int(f, "seed", 99); });
  });
  const CheckpointMeta v2 = read_checkpoint_meta(path, MPI_COMM_WORLD);
  EXPECT_EQ(v2.format_version, 2);
  EXPECT_EQ(v2.seed, 99u);
  expect_standard(path);
  verify_checkpoint(path, MPI_COMM_WORLD);
}

// ---------------------------------------------------------------------------------------
// Paths that are not checkpoint files

TEST_F(CheckpointTest, ADirectoryIsRefusedByEveryReader) {
  const std::string path = (fs::path(dir_) / "step_00000001.h5").string();
  on_root([&] { fs::create_directories(fs::path(path) / "sub"); });
  const std::vector<std::string> msg = {"checkpoint " + path +
                                        " is a directory, not a checkpoint file"};
  Local a = part_of(wte_, 0);
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); }, msg);
  expect_error<InputError>([&] { load_checkpoint(path, {slice_of(wte_, a)}, MPI_COMM_WORLD); },
                           msg);
  expect_error<InputError>([&] { verify_checkpoint(path, MPI_COMM_WORLD); }, msg);
  expect_error<InputError>([&] { describe_checkpoint(path, MPI_COMM_WORLD); }, msg);
  // The message is exact: nothing from MPI-IO or HDF5 is appended.
  try {
    read_checkpoint_meta(dir_, MPI_COMM_WORLD);
    ADD_FAILURE() << "no exception";
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "checkpoint " + dir_ + " is a directory, not a checkpoint file");
  }
}

TEST_F(CheckpointTest, AFifoIsRefusedWithoutWaiting) {
  const std::string path = (fs::path(dir_) / "fifo.h5").string();
  on_root([&] { ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0); });
  expect_error<InputError>([&] { read_checkpoint_meta(path, MPI_COMM_WORLD); },
                           {"checkpoint " + path + " is not a regular file"});
  expect_error<InputError>([&] { verify_checkpoint(path, MPI_COMM_WORLD); },
                           {"checkpoint " + path + " is not a regular file"});
}

// ---------------------------------------------------------------------------------------
// Save failures of the environment are IoErrors

TEST_F(CheckpointTest, ALatestThatCannotBeUpdatedIsAnIoErrorAfterACompleteFile) {
  const std::string good = save_standard(1);
  const std::string latest = (fs::path(dir_) / "latest").string();
  on_root([&] { fs::create_directories(fs::path(latest + ".tmp") / "sub"); });
  const std::string next = (fs::path(dir_) / "step_00000002.h5").string();
  expect_error<IoError>([&] { save_standard(2); },
                        {"cannot save checkpoint " + next + ": cannot update " + latest + ": "});
  EXPECT_EQ(latest_checkpoint(dir_), good);  // unchanged
  verify_checkpoint(next, MPI_COMM_WORLD);   // complete, but not named by latest
}

// A 4 MiB tmpfs mounted (as root) in the test's directory; skips the test where mount is
// refused.
class TmpfsCheckpointTest : public CheckpointTest {
 protected:
  void SetUp() override {
    CheckpointTest::SetUp();
    mount_ = (fs::path(dir_) / "fs").string();
    std::string status = "ok";
    if (world_rank() == 0) {
      fs::create_directories(mount_);
      if (::mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=4m") != 0)
        status = std::strerror(errno);
    }
    status = broadcast(status);
    mounted_ = status == "ok";
    if (!mounted_) GTEST_SKIP() << "cannot mount a tmpfs (mount needs root): " << status;
  }
  void TearDown() override {
    MPI_Barrier(MPI_COMM_WORLD);
    if (mounted_ && world_rank() == 0) ::umount2(mount_.c_str(), MNT_DETACH);
    CheckpointTest::TearDown();
  }
  void remount_read_only() {
    on_root([&] {
      ASSERT_EQ(::mount("tmpfs", mount_.c_str(), "tmpfs", MS_REMOUNT | MS_RDONLY, "size=4m"), 0)
          << std::strerror(errno);
    });
  }
  std::string mount_;
  bool mounted_ = false;
};

TEST_F(TmpfsCheckpointTest, AFullFileSystemIsAnIoErrorAndKeepsThePreviousCheckpoint) {
  const std::string ckpt = mount_ + "/ckpt";
  Local a = part_of(wte_, 0);
  const std::string good =
      save_checkpoint(ckpt, sample_meta(1), {slice_of(wte_, a)}, MPI_COMM_WORLD, 0);
  Full big = make_full("/model/big", {1024, 1024}, 7);  // 4 MiB: more than the file system
  Local lbig = part_of(big, 0);
  expect_error<IoError>(
      [&] { save_checkpoint(ckpt, sample_meta(2), {slice_of(big, lbig)}, MPI_COMM_WORLD, 0); },
      {"cannot save checkpoint " + ckpt + "/step_00000002.h5: not enough free space in " + ckpt +
           ": the checkpoint needs about ",
       " MiB are free"});
  EXPECT_EQ(latest_checkpoint(ckpt), good);
  if (world_rank() == 0) {
    for (const auto& e : fs::directory_iterator(ckpt))
      EXPECT_FALSE(e.path().string().ends_with(".tmp")) << e.path();
  }
  Local back = part_of(wte_, 1);
  load_checkpoint(good, {slice_of(wte_, back)}, MPI_COMM_WORLD);
  EXPECT_TRUE(same_bits(back.data, part_of(wte_, 1).data));
}

TEST_F(TmpfsCheckpointTest, AReadOnlyFileSystemIsAnIoError) {
  const std::string ckpt = mount_ + "/ckpt";
  Local a = part_of(wte_, 0);
  const std::string good =
      save_checkpoint(ckpt, sample_meta(1), {slice_of(wte_, a)}, MPI_COMM_WORLD, 0);
  remount_read_only();
  expect_error<IoError>(
      [&] { save_checkpoint(ckpt, sample_meta(2), {slice_of(wte_, a)}, MPI_COMM_WORLD, 0); },
      {"cannot save checkpoint " + ckpt + "/step_00000002.h5: cannot create " + ckpt +
       "/step_00000002.h5.tmp: "});
  const std::string sub = mount_ + "/new";
  expect_error<IoError>(
      [&] { save_checkpoint(sub, sample_meta(2), {slice_of(wte_, a)}, MPI_COMM_WORLD, 0); },
      {"cannot save checkpoint " + sub + "/step_00000002.h5: cannot create directory " + sub +
       ": "});
  EXPECT_EQ(latest_checkpoint(ckpt), good);
  verify_checkpoint(good, MPI_COMM_WORLD);
}

// ---------------------------------------------------------------------------------------
// Step checkpoints and resume discovery

TEST_F(CheckpointTest, StepCheckpointsListsRegularStepFilesNewestFirst) {
  EXPECT_TRUE(step_checkpoints(dir_ + "/absent").empty());
  EXPECT_TRUE(step_checkpoints(dir_).empty());
  on_root([&] {
    for (const char* name : {"step_00000002.h5", "step_10.h5", "step_00000003.h5.tmp", "latest",
                             "other.h5", "step_x.h5", "step_.h5", "step_00000004.h5x"})
      std::ofstream(fs::path(dir_) / name) << "x";
    fs::create_directories(fs::path(dir_) / "step_00000005.h5");
    fs::create_symlink("step_00000002.h5", fs::path(dir_) / "step_00000007.h5");
    fs::create_symlink("nowhere.h5", fs::path(dir_) / "step_00000008.h5");
  });
  const auto d = [&](const char* name) { return (fs::path(dir_) / name).string(); };
  EXPECT_EQ(step_checkpoints(dir_),
            (std::vector<std::pair<int64_t, std::string>>{
                {10, d("step_10.h5")}, {7, d("step_00000007.h5")}, {2, d("step_00000002.h5")}}));
}

class ResumeTest : public CheckpointTest {
 protected:
  std::string step_path(int64_t step) const {
    return (fs::path(dir_) / checkpoint_file_name(step)).string();
  }
  std::string pointer() const { return (fs::path(dir_) / "latest").string(); }
  void remove_latest() {
    on_root([&] { fs::remove(pointer()); });
  }
  void truncate(const std::string& path) {
    on_root([&] { fs::resize_file(path, fs::file_size(path) / 2); });
  }
  void flip_a_bit(const std::string& path) {
    on_root([&] { corrupt(path, "/model/wte"); });
  }
  void expect_resume(const ResumePoint& r, const std::string& path, const std::string& note) {
    EXPECT_EQ(r.path, path);
    EXPECT_EQ(r.note, note);
    EXPECT_EQ(r.note.find('\n'), std::string::npos);
  }
  std::string uses(int64_t step) const {
    return "; resuming from " + step_path(step) + ", the newest checkpoint that verifies";
  }
};

TEST_F(ResumeTest, NothingSavedIsAFreshStart) {
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), "", "");
  expect_resume(find_resume_checkpoint(dir_ + "/absent", MPI_COMM_WORLD), "", "");
}

TEST_F(ResumeTest, AGoodLatestIsUsedWithoutANote) {
  save_standard(1);
  save_standard(2);
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(2), "");
  // latest wins even when a newer step file exists (a crash between the two renames).
  save_standard(3);
  on_root([&] { std::ofstream(pointer()) << "step_00000002.h5\n"; });
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(2), "");
}

TEST_F(ResumeTest, AMissingLatestFallsBackToTheNewestStepFile) {
  save_standard(20);
  save_standard(40);
  save_standard(6);  // older by number, though written last
  remove_latest();
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(40),
                "checkpoint pointer " + pointer() + " is missing" + uses(40));
  expect_standard(step_path(40));
}

TEST_F(ResumeTest, ALatestNamingADeletedFileFallsBack) {
  save_standard(1);
  save_standard(2);
  on_root([&] { fs::remove(step_path(2)); });
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(1),
                "checkpoint pointer " + pointer() +
                    " names step_00000002.h5, which does not exist" + uses(1));
}

TEST_F(ResumeTest, AMalformedOrTemporaryLatestFallsBack) {
  save_standard(1);
  on_root([&] { std::ofstream(pointer()) << "\n"; });
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(1),
                "checkpoint pointer " + pointer() +
                    " is malformed (expected one line with a file name)" + uses(1));
  // A complete checkpoint under a .tmp name is never used, even when latest names it.
  on_root([&] {
    fs::copy_file(step_path(1), step_path(5) + ".tmp");
    std::ofstream(pointer()) << "step_00000005.h5.tmp\n";
  });
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(1),
                "checkpoint pointer " + pointer() +
                    " names step_00000005.h5.tmp, an unfinished save" + uses(1));
  remove_latest();
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(1),
                "checkpoint pointer " + pointer() + " is missing" + uses(1));
}

TEST_F(ResumeTest, ALatestNamingATruncatedFileFallsBackToAnOlderGoodOne) {
  save_standard(1);
  save_standard(2);
  truncate(step_path(2));
  const ResumePoint r = find_resume_checkpoint(dir_, MPI_COMM_WORLD);
  EXPECT_EQ(r.path, step_path(1));
  const std::string head = "checkpoint pointer " + pointer() +
                           " names step_00000002.h5, which fails verification: checkpoint " +
                           step_path(2) + " is unreadable (truncated or not a polyhead checkpoint)";
  EXPECT_TRUE(r.note.starts_with(head)) << r.note;
  EXPECT_TRUE(r.note.ends_with(uses(1))) << r.note;
  EXPECT_EQ(r.note.find('\n'), std::string::npos);
}

TEST_F(ResumeTest, ACorruptedOrEditedFileIsSkippedAndNamed) {
  save_standard(1);
  save_standard(2);
  save_standard(3);
  save_standard(4);
  flip_a_bit(step_path(4));  // latest's target
  on_root([&] { edit_root(step_path(3), [](hid_t f) { set_root_int(f, "step", 30); }); });
  truncate(step_path(2));
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), step_path(1),
                "checkpoint pointer " + pointer() +
                    " names step_00000004.h5, which fails verification: checkpoint " +
                    step_path(4) + ": tensor /model/wte fails its checksum (file corrupted)" +
                    uses(1) + " (skipped, failing verification: step_00000003.h5, " +
                    "step_00000002.h5)");
}

TEST_F(ResumeTest, EverythingDamagedGivesNoPathAndANote) {
  save_standard(1);
  save_standard(2);
  flip_a_bit(step_path(2));
  truncate(step_path(1));
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), "",
                "checkpoint pointer " + pointer() +
                    " names step_00000002.h5, which fails verification: checkpoint " +
                    step_path(2) + ": tensor /model/wte fails its checksum (file corrupted)" +
                    "; no checkpoint in " + dir_ +
                    " verifies (failing verification: step_00000001.h5)");
  remove_latest();
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), "",
                "checkpoint pointer " + pointer() + " is missing; no checkpoint in " + dir_ +
                    " verifies (failing verification: step_00000002.h5, step_00000001.h5)");
  // A pointer to nothing, and no step file at all.
  on_root([&] {
    fs::remove(step_path(1));
    fs::remove(step_path(2));
    std::ofstream(pointer()) << "step_00000002.h5\n";
  });
  expect_resume(find_resume_checkpoint(dir_, MPI_COMM_WORLD), "",
                "checkpoint pointer " + pointer() +
                    " names step_00000002.h5, which does not exist; " + dir_ +
                    " holds no other checkpoint");
}

TEST_F(ResumeTest, ANewerFormatIsRefusedNotSkipped) {
  save_standard(1);
  save_standard(2);
  const int newer = kCheckpointFormatVersion + 1;
  on_root(
      [&] { edit_root(step_path(2), [&](hid_t f) { set_root_int(f, "format_version", newer); }); });
  const std::vector<std::string> msg = {
      "checkpoint " + step_path(2) + " has format version " + std::to_string(newer) +
      "; this polyhead reads versions up to " + std::to_string(kCheckpointFormatVersion) +
      " (use a newer polyhead)"};
  expect_error<InputError>([&] { find_resume_checkpoint(dir_, MPI_COMM_WORLD); }, msg);
  remove_latest();
  expect_error<InputError>([&] { find_resume_checkpoint(dir_, MPI_COMM_WORLD); }, msg);
}

}  // namespace
}  // namespace ph
