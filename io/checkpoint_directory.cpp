#include "io/checkpoint_directory.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <utility>
#include <vector>

#include "io/checkpoint.h"
#include "parallel/errors.h"

namespace ph {

namespace fs = std::filesystem;

namespace ckpt {
namespace {

std::string errno_text() {
  return std::strerror(errno);
}

std::string mib_up(uint64_t bytes) {
  return std::to_string((bytes + (1 << 20) - 1) >> 20);
}

// Flushes a file's (or a directory's) contents to stable storage.
bool sync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? (O_RDONLY | O_DIRECTORY) : O_RDONLY);
  if (fd < 0) return false;
  // Some file systems cannot sync a directory; the rename itself is still atomic there.
  const bool ok = ::fsync(fd) == 0 || (directory && (errno == EINVAL || errno == ENOTSUP));
  const int err = errno;
  ::close(fd);
  errno = err;  // the caller reports fsync's failure, not close's
  return ok;
}

std::string parent_dir(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  return parent.empty() ? "." : parent.string();
}

// The step of "step_<digits><suffix>", or -1 for any other name.
int64_t step_of(const std::string& file, const std::string& suffix) {
  if (!file.starts_with("step_") || !file.ends_with(suffix) || file.size() <= 5 + suffix.size())
    return -1;
  const char* first = file.data() + 5;
  const char* last = file.data() + file.size() - suffix.size();
  int64_t step = -1;
  const auto [end, ec] = std::from_chars(first, last, step);
  return ec == std::errc() && end == last ? step : -1;
}

}  // namespace

void check_file_size_limit(uint64_t bytes, const std::string& ctx) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_FSIZE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      limit.rlim_cur < bytes)
    throw IoError(ctx + "the checkpoint needs about " + mib_up(bytes) +
                  " MiB, more than the file size limit (ulimit -f) of " +
                  std::to_string(limit.rlim_cur >> 20) + " MiB");
}

void prepare_directory(const std::string& dir, const std::string& tmp, uint64_t bytes,
                       const std::string& ctx) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  std::error_code ec_dir;
  if (!fs::is_directory(dir, ec_dir))
    throw IoError(ctx + "cannot create directory " + dir + ": " +
                  (ec ? ec.message() : "a file of that name exists"));
  const fs::file_status st = fs::symlink_status(tmp, ec);
  if (fs::exists(st) && !fs::is_regular_file(st))
    throw IoError(ctx + tmp + " exists and is not a regular file");
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0 || vfs.f_blocks == 0) return;  // nothing to go by
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  if (free_bytes < bytes)
    throw IoError(ctx + "not enough free space in " + dir + ": the checkpoint needs about " +
                  mib_up(bytes) + " MiB, " + std::to_string(free_bytes >> 20) + " MiB are free");
}

void reserve_space(const std::string& path, uint64_t bytes, const std::string& ctx) {
  const int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) {
    const std::string why = errno_text();
    throw IoError(ctx + "cannot open " + path + ": " + why);
  }
  const int rc = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, static_cast<off_t>(bytes));
  const int err = errno;
  ::close(fd);
  if (rc != 0 && err != EOPNOTSUPP && err != ENOSYS && err != EINVAL)
    throw IoError(ctx + "cannot reserve " + std::to_string(bytes >> 20) + " MiB for " + path +
                  ": " + std::strerror(err));
}

void commit(const std::string& tmp, const std::string& path, const std::string& ctx) {
  if (!sync_path(tmp, false)) {
    const std::string why = errno_text();
    throw IoError(ctx + "cannot sync " + tmp + ": " + why);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string why = errno_text();
    throw IoError(ctx + "cannot rename " + tmp + " to " + path + ": " + why);
  }
  sync_path(parent_dir(path), true);
}

void write_latest(const std::string& dir, const std::string& name, const std::string& ctx) {
  const std::string latest = (fs::path(dir) / "latest").string(), tmp = latest + ".tmp";
  const std::string line = name + "\n";
  auto fail = [&](const std::string& why) {
    ::unlink(tmp.c_str());
    throw IoError(ctx + "cannot update " + latest + ": " + why);
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

void prune(const std::string& dir, int keep_last, const std::string& current) {
  std::vector<std::pair<int64_t, fs::path>> steps;
  std::vector<fs::path> stale;
  std::error_code ec;
  const int64_t current_step = step_of(current, ".h5");
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string file = entry.path().filename().string();
    if (!entry.is_regular_file(ec) || file == current) continue;
    if (step_of(file, ".h5.tmp") >= 0) stale.push_back(entry.path());
    const int64_t step = step_of(file, ".h5");
    // Files of later steps (a run resumed from an older checkpoint, or from before a damaged
    // one) are not this run's history: they are left alone until the run passes them.
    if (step >= 0 && (current_step < 0 || step < current_step))
      steps.emplace_back(step, entry.path());
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

}  // namespace ckpt

std::string checkpoint_file_name(int64_t step) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "step_%08lld.h5", static_cast<long long>(step));
  return buf;
}

std::vector<std::pair<int64_t, std::string>> step_checkpoints(const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string file = it->path().filename().string();
    const int64_t step = ckpt::step_of(file, ".h5");
    std::error_code ec_type;
    if (step >= 0 && it->is_regular_file(ec_type))
      out.emplace_back(step, (fs::path(dir) / file).string());
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a > b; });
  return out;
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

}  // namespace ph
