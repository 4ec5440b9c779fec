#include "trainer/run_setup.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>

#include "io/checkpoint.h"
#include "parallel/agreement.h"
#include "trainer/checkpointing.h"

namespace ph {

namespace fs = std::filesystem;

namespace {

constexpr const char* kLockName = ".polyhead.lock";

std::string errno_text() {
  return std::strerror(errno);
}

std::string host_name() {
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) != 0) return "unknown host";
  return host;
}

// Prints the keys whose value differs between the checkpoint's config and this run's (the
// model must match; data, batch or optimizer changes are allowed but should be visible).
void report_config_changes(const std::string& saved_yaml, const Config& cfg) {
  Config saved;
  try {
    saved = parse_config(saved_yaml, {}, "checkpoint config");
  } catch (const InputError&) {
    return;  // the architecture check has read it already; nothing to compare otherwise
  }
  for (const ConfigDifference& d : config_differences(cfg, saved, /*architecture_only=*/false))
    if (!d.key.starts_with("run.") && !d.key.starts_with("checkpoint."))
      std::printf("note: resuming with a changed setting: %s = %s (checkpoint: %s)\n",
                  d.key.c_str(), d.a.c_str(), d.b.c_str());
}

bool same_directory(const std::string& a, const std::string& b) {
  std::error_code ec;
  return fs::weakly_canonical(a, ec) == fs::weakly_canonical(b, ec);
}

}  // namespace

void check_same_config(const Config& cfg, Communicator& world) {
  const std::string text = config_to_yaml(cfg);
  int64_t h[2] = {static_cast<int64_t>(std::hash<std::string>{}(text) >> 1), 0};
  h[1] = -h[0];
  world.all_reduce(h, 2, ReduceOp::Max);
  if (h[0] == -h[1]) return;
  // They differ: every rank compares its config with rank 0's, and the lowest rank that
  // differs names its first differing key.
  std::string first = text;
  world.broadcast(first, 0);
  agree(world, [&] {
    const auto diff = config_differences(cfg, parse_config(first, {}, "rank 0's config"), false);
    if (diff.empty()) return;
    throw InputError("the ranks were started with different configs: rank " +
                     std::to_string(world.rank()) + " has " + diff[0].key + " = " + diff[0].a +
                     " where rank 0 has " + diff[0].b +
                     " (check the arguments the launcher passes to each rank)");
  });
}

RunDirectory::RunDirectory(const Config& cfg, const ProcessGrid& grid) : cfg_(cfg), grid_(grid) {
  const std::string dir = cfg.run.dir;
  agree(*grid.world_comm, [&] {
    if (grid.rank != 0) return;
    std::error_code ec;
    created_ = !fs::exists(dir, ec);
    fs::create_directories(dir, ec);
    if (ec || !fs::is_directory(dir, ec))
      throw InputError("run.dir: cannot create '" + dir +
                       "': " + (ec ? ec.message() : "a file of that name exists"));
    const std::string path = (fs::path(dir) / kLockName).string();
    lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock_fd_ < 0)
      throw InputError("run.dir: cannot write the lock file " + path + ": " + errno_text());
    if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
      char owner[512] = "";
      const ssize_t n = ::pread(lock_fd_, owner, sizeof owner - 1, 0);
      std::string who(owner, n > 0 ? static_cast<size_t>(n) : 0);
      while (!who.empty() && (who.back() == '\n' || who.back() == ' ')) who.pop_back();
      ::close(lock_fd_);
      lock_fd_ = -1;
      throw InputError("run.dir: '" + dir + "' is in use by another polyhead run (" +
                       (who.empty() ? std::string("owner unknown") : who) +
                       "); wait for it to end, or choose another run.dir");
    }
    const std::string me = "host " + host_name() + ", pid " + std::to_string(::getpid()) + "\n";
    if (::ftruncate(lock_fd_, 0) != 0 ||
        ::pwrite(lock_fd_, me.data(), me.size(), 0) != static_cast<ssize_t>(me.size()))
      throw InputError("run.dir: cannot write the lock file " + path + ": " + errno_text());
  });
}

RunDirectory::~RunDirectory() {
  if (lock_fd_ < 0) return;
  // A directory this run created and that holds nothing but the lock: the run was refused
  // before it wrote anything, so nothing of it stays behind.
  std::error_code ec;
  const std::string dir = cfg_.run.dir;
  bool only_lock = created_;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename() != kLockName) only_lock = false;
  if (only_lock && !ec) {
    fs::remove(fs::path(dir) / kLockName, ec);
    fs::remove(dir, ec);
  }
  ::close(lock_fd_);  // releases the lock
}

std::string RunDirectory::resume_point() {
  const std::string run_dir = cfg_.run.dir, ckpt_dir = run_dir + "/checkpoints";
  const std::string& resume = cfg_.checkpoint.resume;
  std::string from;
  agree(*grid_.world_comm, [&] {
    const auto existing = step_checkpoints(ckpt_dir);  // newest first
    const std::string newest = existing.empty() ? std::string() : existing.front().second;
    if (resume == "none") {
      if (!existing.empty())
        throw InputError("run.dir: '" + run_dir + "' already holds checkpoints of a run (newest " +
                         newest +
                         "); continue it with checkpoint.resume=auto, or choose another run.dir");
      return;
    }
    if (resume != "auto") {
      from = resume;
      const bool inside = same_directory(fs::path(resume).parent_path().string(), ckpt_dir);
      if (!existing.empty() && !inside)
        throw InputError("run.dir: '" + run_dir + "' already holds checkpoints of a run (newest " +
                         newest + "); resume from " + resume +
                         " into another run.dir, or continue this one with checkpoint.resume=auto");
      if (inside && !same_directory(resume, newest))
        throw InputError("checkpoint.resume=" + resume +
                         " is older than the newest checkpoint of the run directory (" + newest +
                         "), which a run resumed from it would overwrite; resume from the newest, "
                         "or copy the checkpoint into another run.dir");
    }
  });
  if (resume == "auto") {
    // Collective: the ranks read the candidates together.
    const ResumePoint point = find_resume_checkpoint(ckpt_dir, MPI_COMM_WORLD);
    if (!point.note.empty() && grid_.rank == 0) std::printf("note: %s\n", point.note.c_str());
    agree(*grid_.world_comm, [&] {
      if (point.path.empty() && !step_checkpoints(ckpt_dir).empty())
        throw InputError("run.dir: no checkpoint of '" + ckpt_dir + "' verifies (" + point.note +
                         "); a fresh run would overwrite them: move them away, or choose another "
                         "run.dir");
    });
    from = point.path;
  }
  if (!from.empty()) {
    const CheckpointMeta meta = check_checkpoint_matches(from, cfg_);
    if (grid_.rank == 0) report_config_changes(meta.config_yaml, cfg_);
  }
  return from;
}

std::string RunDirectory::init_point(const std::string& resume_from) {
  const std::string& init = cfg_.checkpoint.init_from;
  if (init.empty()) return "";
  const std::string& resume = cfg_.checkpoint.resume;
  if (resume != "auto" && resume != "none")
    throw InputError("checkpoint.init_from=" + init + " and checkpoint.resume=" + resume +
                     " both name a checkpoint to start from: give one (init_from starts a fresh "
                     "run from its weights, resume continues a run)");
  if (!resume_from.empty()) {
    if (grid_.rank == 0)
      std::printf(
          "note: checkpoint.init_from=%s is not used: the run continues from its own "
          "checkpoint %s\n",
          init.c_str(), resume_from.c_str());
    return "";
  }
  try {
    check_checkpoint_matches(init, cfg_);
  } catch (const InputError& e) {
    throw InputError("checkpoint.init_from: " + std::string(e.what()));
  }
  return init;
}

void RunDirectory::check_checkpoint_room(uint64_t bytes) {
  const std::string dir = cfg_.run.dir + "/checkpoints";
  agree(*grid_.world_comm, [&] {
    if (grid_.rank != 0) return;
    std::error_code ec;
    if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
      throw InputError("run.dir: the checkpoints path " + dir + " is not a directory");
    fs::create_directories(dir, ec);
    if (ec) throw InputError("run.dir: cannot create " + dir + ": " + ec.message());
    const std::string probe = dir + "/.write_test";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
      throw InputError("run.dir: cannot write checkpoints into " + dir + ": " + errno_text());
    ::close(fd);
    ::unlink(probe.c_str());
    struct statvfs st {};
    if (::statvfs(dir.c_str(), &st) == 0) {
      const uint64_t free_bytes = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
      if (free_bytes < bytes) {
        const auto mib = [](uint64_t b) { return std::to_string((b + (1u << 20) - 1) >> 20); };
        throw InputError("run.dir: " + dir + " has " + mib(free_bytes) +
                         " MiB free, less than one checkpoint of this model needs (about " +
                         mib(bytes) + " MiB)");
      }
    }
  });
}

}  // namespace ph
