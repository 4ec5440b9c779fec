// HDF5 plumbing of the checkpoint store (internal to io/checkpoint*.cpp): HDF5's error stack
// turned into one line, owned identifiers, scalar attributes, the MPI-IO property lists and
// the listing of a file's datasets. Failures throw InputError with a complete message;
// save_checkpoint turns those of a save into IoError.
#pragma once
#include <hdf5.h>
#include <mpi.h>

#include <string>
#include <utility>
#include <vector>

#include "parallel/errors.h"

namespace ph::ckpt {

// A checkpoint written by a newer polyhead. Every rank throws it alike, outside agree(), so
// that find_resume_checkpoint can tell it from damage: the file is fine, this reader is old.
struct NewerFormatError : InputError {
  using InputError::InputError;
};

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
std::string hdf5_detail();

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
H5Id make_id(hid_t id, H5Id::Closer closer, const std::string& what);

// Throws InputError(what + HDF5 detail) when status reports a failure.
void check_h5(herr_t status, const std::string& what);

// "checkpoint P is unreadable (truncated or not a polyhead checkpoint): detail"
InputError unreadable(const std::string& path, const std::string& detail);

// Writes the scalar attribute `name` of obj: *value of mem_type, stored as file_type.
void write_attr(hid_t obj, const char* name, hid_t file_type, hid_t mem_type, const void* value,
                const std::string& what);
// Writes a scalar variable-length UTF-8 string attribute.
void write_string_attr(hid_t obj, const char* name, const std::string& value,
                       const std::string& what);

// Opens the single-valued attribute `name` of obj (`owner` names obj in messages, e.g.
// "the file"); a missing or array attribute makes the checkpoint at path unreadable.
H5Id open_attr(hid_t obj, const char* name, const std::string& owner, const std::string& path);

// Reads a single-valued numeric attribute, converted to mem_type (the type of T).
template <class T>
T read_attr(hid_t obj, const char* name, hid_t mem_type, const std::string& owner,
            const std::string& path) {
  H5Id attr = open_attr(obj, name, owner, path);
  T value{};
  if (H5Aread(attr.get(), mem_type, &value) < 0)
    throw unreadable(path, owner + " attribute '" + name + "': " + hdf5_detail());
  return value;
}

// Reads a string attribute of the file's root (fixed or variable length).
std::string read_string_attr(hid_t obj, const char* name, const std::string& path);

// A file-access property list for MPI-IO over comm.
H5Id mpio_fapl(MPI_Comm comm, const std::string& what);
// A dataset-transfer property list for MPI-IO in `mode` (independent or collective).
H5Id transfer_plist(H5FD_mpio_xfer_t mode, const std::string& what);

// Every dataset in the file, as absolute paths in HDF5's name order.
std::vector<std::string> list_datasets(hid_t file, const std::string& path);
// The extent of a dataset ({} for a scalar).
std::vector<hsize_t> dataset_shape(hid_t dset);

}  // namespace ph::ckpt
