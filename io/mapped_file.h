// A whole file mapped read-only into memory (file-backed pages: nothing is copied, the kernel
// pages it in as it is read). Movable, not copyable; unmapped on destruction.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace ph {

class MappedFile {
 public:
  // Maps `path` (an empty file maps to an empty view). `label` starts every message, e.g.
  // "pair file 'P'" or "prepare: input 'P'". Throws InputError:
  //   LABEL: cannot open: <strerror>
  //   LABEL: not a regular file
  //   LABEL: cannot map: <strerror>
  MappedFile(const std::string& path, const std::string& label);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const char* data() const { return static_cast<const char*>(map_); }
  size_t size() const { return size_; }
  std::string_view text() const { return {data(), size_}; }

 private:
  void release() noexcept;

  void* map_ = nullptr;
  size_t size_ = 0;
};

}  // namespace ph
