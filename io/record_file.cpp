#include "io/record_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "parallel/errors.h"

namespace ph {

RecordFile::~RecordFile() {
  if (fd_ >= 0) ::close(fd_);
}

void RecordFile::open(const std::string& path, bool create_new, const std::string& key) {
  if (fd_ >= 0) ::close(fd_);
  path_ = path;
  const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | (create_new ? O_CREAT | O_EXCL : 0);
  fd_ = ::open(path.c_str(), flags, 0644);
  if (fd_ < 0) throw InputError(key + ": cannot write " + path + ": " + std::strerror(errno));
  struct stat st {};
  bytes_ = ::fstat(fd_, &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

RecordFile::Failure RecordFile::append(std::string_view record) {
  size_t done = 0;
  Failure f;
  while (done < record.size() && f.why.empty()) {
    const ssize_t n = ::write(fd_, record.data() + done, record.size() - done);
    if (n > 0)
      done += static_cast<size_t>(n);
    else
      f.why = n < 0 ? std::strerror(errno) : "the write made no progress";
  }
  if (!f.why.empty()) {
    // Never leave half a record: cut the file back to the whole records before it.
    f.cut = ::ftruncate(fd_, static_cast<off_t>(bytes_)) == 0;
    return f;
  }
  bytes_ += record.size();
  return f;
}

}  // namespace ph
