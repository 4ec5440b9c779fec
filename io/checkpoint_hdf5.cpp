#include "io/checkpoint_hdf5.h"

#include <algorithm>

namespace ph::ckpt {

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

H5Id make_id(hid_t id, H5Id::Closer closer, const std::string& what) {
  if (id < 0) throw InputError(what + ": " + hdf5_detail());
  return H5Id(id, closer);
}

void check_h5(herr_t status, const std::string& what) {
  if (status < 0) throw InputError(what + ": " + hdf5_detail());
}

InputError unreadable(const std::string& path, const std::string& detail) {
  return InputError("checkpoint " + path +
                    " is unreadable (truncated or not a polyhead checkpoint): " + detail);
}

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

std::vector<hsize_t> dataset_shape(hid_t dset) {
  H5Id space(H5Dget_space(dset), H5Sclose);
  std::vector<hsize_t> dims(
      static_cast<size_t>(std::max(0, H5Sget_simple_extent_ndims(space.get()))));
  H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr);
  return dims;
}

}  // namespace ph::ckpt
