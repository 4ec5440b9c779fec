// Faults a demanding user inflicts on a run, through the polyhead binary: two runs in one run
// directory, a missing or damaged `latest`, a full disk during training and during a save,
// checkpoint paths that cannot hold a checkpoint, refused input, a record cut by a kill, ranks
// started with different configs, and a hung rank. Each case checks the message, the exit
// status and that nothing good was lost. Cases that need a tmpfs skip, saying so, where mount
// is refused.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_util.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using testing::count_occurrences;
using testing::read_file;
using testing::run_command;
using testing::TempDir;
using testing::write_file;

const std::string kBin = testing::polyhead_binary();

// A small, fast config writing into run_dir.
std::string quick_config(const TempDir& tmp, const std::string& run_dir,
                         const std::string& extra = "") {
  const std::string path = tmp / "quick.yaml";
  write_file(path,
             "model:\n  n_layers: 1\n  d_model: 16\n  n_heads: 2\n  seq_len: 16\n"
             "train:\n  max_steps: 6\n  micro_batch: 2\n  eval_interval: 0\n  eval_batches: 1\n"
             "optim:\n  warmup_steps: 1\n"
             "data:\n  task_digits: 2\n  task_train_problems: 300\n  task_val_problems: 20\n"
             "sample:\n  count: 0\n"
             "log:\n  interval: 1\n"
             "run:\n  dir: " +
                 run_dir + "\n" + extra);
  return path;
}

bool wait_for(const std::function<bool()>& done, double seconds) {
  const auto until = Clock::now() + std::chrono::duration<double>(seconds);
  while (!done()) {
    if (Clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

// A command running in the background; its output and exit status land in files.
struct Background {
  std::string log, rc;
  bool finished() const { return fs::exists(rc) && !read_file(rc).empty(); }
  int exit_code() const { return finished() ? std::stoi(read_file(rc)) : -1; }
};

Background start(const TempDir& tmp, const std::string& name, const std::string& cmd) {
  Background b{tmp / (name + ".log"), tmp / (name + ".rc")};
  run_command("(" + cmd + " > " + b.log + " 2>&1; echo $? > " + b.rc + ".tmp; mv " + b.rc +
              ".tmp " + b.rc + ") > /dev/null 2>&1 &");
  return b;
}

// The pids of polyhead processes whose command line mentions `marker` (their config's path).
std::vector<pid_t> polyhead_pids(const std::string& marker) {
  std::vector<pid_t> pids;
  const auto r = run_command("for p in $(pgrep -x polyhead); do grep -qa -- '" + marker +
                             "' /proc/$p/cmdline 2>/dev/null && echo $p; done");
  std::istringstream in(r.output);
  for (pid_t p; in >> p;) pids.push_back(p);
  return pids;
}

int lines_of(const std::string& path) {
  return count_occurrences(read_file(path), "\n");
}

// A small tmpfs mounted for the life of the object (root only: CI runs as root).
struct SmallDisk {
  std::string path;
  bool mounted = false;
  SmallDisk(const TempDir& tmp, const std::string& size) : path(tmp / "disk") {
    fs::create_directories(path);
    mounted = ::mount("tmpfs", path.c_str(), "tmpfs", 0, ("size=" + size).c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted) ::umount2(path.c_str(), MNT_DETACH);
  }
};

#define REQUIRE_MOUNTED(disk)                                           \
  if (!(disk).mounted)                                                  \
  GTEST_SKIP() << "cannot mount a tmpfs here (" << std::strerror(errno) \
               << "): the full-disk cases need one (CI runs as root, where mount works)"

// --- the run directory ----------------------------------------------------------------------

TEST(Faults, ASecondRunInTheSameDirectoryIsRefusedAndAKillReleasesTheLock) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const std::string cfg = quick_config(tmp, run);
  Background a = start(tmp, "a", kBin + " train " + cfg + " train.max_steps=100000");
  ASSERT_TRUE(wait_for([&] { return lines_of(run + "/metrics.jsonl") >= 2; }, 60))
      << read_file(a.log);
  const std::vector<pid_t> owner = polyhead_pids(cfg);
  ASSERT_EQ(owner.size(), 1u);
  const auto b = run_command(kBin + " train " + cfg + " train.max_steps=100000");
  EXPECT_EQ(b.exit_code, 2) << b.output;
  EXPECT_EQ(count_occurrences(b.output, "polyhead: error"), 1) << b.output;
  EXPECT_NE(b.output.find("is in use by another polyhead run (host "), std::string::npos)
      << b.output;
  EXPECT_NE(b.output.find("pid " + std::to_string(owner[0]) + ")"), std::string::npos) << b.output;
  // kill -9 releases the lock: the next run of the directory proceeds (A saved no checkpoint,
  // so it starts afresh).
  kill(owner[0], SIGKILL);
  ASSERT_TRUE(wait_for([&] { return a.finished(); }, 30));
  const auto c = run_command(kBin + " train " + cfg + " train.max_steps=3");
  EXPECT_EQ(c.exit_code, 0) << c.output;
}

// Train 6 steps with checkpoints at 2, 4 and 6, then lose `latest`: the next run resumes from
// the newest checkpoint that verifies, says so, and touches none of the older ones; with
// `latest` naming a damaged file it falls back to an older one; a fresh run (resume=none) is
// refused and writes nothing.
TEST(Faults, AMissingOrDamagedLatestResumesFromTheNewestCheckpointThatVerifies) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const std::string ck = run + "/checkpoints/";
  const std::string cfg = quick_config(tmp, run, "checkpoint:\n  interval: 2\n  keep_last: 10\n");
  ASSERT_EQ(run_command(kBin + " train " + cfg).exit_code, 0);
  const std::string s2 = read_file(ck + "step_00000002.h5"),
                    s4 = read_file(ck + "step_00000004.h5"),
                    s6 = read_file(ck + "step_00000006.h5");
  ASSERT_FALSE(s6.empty());
  fs::remove(ck + "latest");

  auto r = run_command(kBin + " train " + cfg + " checkpoint.resume=none");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("already holds checkpoints"), std::string::npos) << r.output;
  EXPECT_EQ(read_file(ck + "step_00000006.h5"), s6);

  r = run_command(kBin + " train " + cfg + " train.max_steps=8");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("latest is missing"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("resumed from " + ck + "step_00000006.h5 at step 6"), std::string::npos)
      << r.output;
  EXPECT_EQ(read_file(ck + "step_00000002.h5"), s2);
  EXPECT_EQ(read_file(ck + "step_00000004.h5"), s4);
  EXPECT_EQ(read_file(ck + "step_00000006.h5"), s6);
  EXPECT_TRUE(fs::exists(ck + "step_00000008.h5"));

  // `latest` names step 8, which is then damaged: step 6 takes its place.
  const std::string s8 = read_file(ck + "step_00000008.h5");
  write_file(ck + "step_00000008.h5", s8.substr(0, s8.size() / 2));
  r = run_command(kBin + " train " + cfg + " train.max_steps=9");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("resumed from " + ck + "step_00000006.h5 at step 6"), std::string::npos)
      << r.output;
}

// A refusal before anything is written leaves no run directory behind.
TEST(Faults, RefusedInputLeavesNoRunDirectory) {
  TempDir tmp;
  const std::string run = tmp / "fresh";
  const auto r = run_command(kBin + " train " + quick_config(tmp, run) +
                             " data.train=" + (tmp / "missing.bin"));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_FALSE(fs::exists(run)) << r.output;
}

// The checkpoints path is checked before the first step: a file in its way, or a disk without
// room for one checkpoint.
TEST(Faults, CheckpointPathProblemsAreFoundBeforeTheFirstStep) {
  TempDir tmp;
  const std::string run = tmp / "run";
  fs::create_directories(run);
  write_file(run + "/checkpoints", "not a directory");
  auto r = run_command(kBin + " train " + quick_config(tmp, run));
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("the checkpoints path " + run + "/checkpoints is not a directory"),
            std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("step      1/"), std::string::npos) << r.output;

  SmallDisk disk(tmp, "1m");
  REQUIRE_MOUNTED(disk);
  r = run_command(kBin + " train " + quick_config(tmp, disk.path + "/run") +
                  " model.vocab_size=30000 data.task_train_problems=50");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("less than one checkpoint of this model needs"), std::string::npos)
      << r.output;
  EXPECT_EQ(r.output.find("step      1/"), std::string::npos) << r.output;
}

// --- a full disk ----------------------------------------------------------------------------

// Fills the file system at `dir` until nothing more can be written.
void fill(const std::string& dir) {
  run_command("dd if=/dev/zero of=" + dir + "/filler bs=64k 2>/dev/null");
}

// Trains the quick config into `run` (with the `extra` overrides) until its records begin, fills
// `disk`, and returns the output once the run has stopped, expecting exit status 1 and one error.
std::string train_until_the_disk_is_full(const TempDir& tmp, const SmallDisk& disk,
                                         const std::string& run, const std::string& extra) {
  Background b = start(tmp, "full",
                       kBin + " train " + quick_config(tmp, run) +
                           " train.max_steps=100000 checkpoint.interval=0" + extra);
  if (!wait_for([&] { return lines_of(run + "/metrics.jsonl") >= 2; }, 60)) {
    ADD_FAILURE() << "no records within a minute\n" << read_file(b.log);
    return "";
  }
  fill(disk.path);
  EXPECT_TRUE(wait_for([&] { return b.finished(); }, 60)) << read_file(b.log);
  const std::string out = read_file(b.log);
  EXPECT_EQ(b.exit_code(), 1) << out;
  EXPECT_EQ(count_occurrences(out, "polyhead: error"), 1) << out;
  return out;
}

TEST(Faults, AFullDiskDuringTrainingStopsWithExitOneAndWholeRecords) {
  TempDir tmp;
  SmallDisk disk(tmp, "8m");
  REQUIRE_MOUNTED(disk);
  const std::string run = disk.path + "/run";
  const std::string out = train_until_the_disk_is_full(tmp, disk, run, "");
  EXPECT_NE(out.find("cannot write " + run + "/metrics.jsonl at step "), std::string::npos) << out;
  EXPECT_NE(out.find("No space left on device"), std::string::npos) << out;
  // Every record is whole: the file ends with a line break and every line is one object.
  const std::string metrics = read_file(run + "/metrics.jsonl");
  ASSERT_FALSE(metrics.empty());
  EXPECT_EQ(metrics.back(), '\n');
  EXPECT_EQ(count_occurrences(metrics, "{"), count_occurrences(metrics, "}\n"));
}

// A TensorBoard event file holds whole records only: each record's length leads exactly to the
// next one and to the file's end (a record is 8 + 4 + length + 4 bytes).
bool whole_records(const std::string& file) {
  size_t at = 0;
  while (at + 12 <= file.size()) {
    uint64_t n = 0;
    std::memcpy(&n, file.data() + at, sizeof n);
    at += 16 + n;
  }
  return at == file.size();
}

// The event file alone on the full disk (log.tensorboard absolute): its failed write stops the
// run like metrics.jsonl's, and the checkpoint saved on the way out holds the run.
TEST(Faults, AFullDiskUnderTensorBoardStopsWithExitOneAndWholeRecords) {
  TempDir tmp;
  SmallDisk disk(tmp, "8m");
  REQUIRE_MOUNTED(disk);
  const std::string run = tmp / "run", tb = disk.path + "/tb";
  const std::string out = train_until_the_disk_is_full(tmp, disk, run, " log.tensorboard=" + tb);
  EXPECT_NE(out.find("cannot write " + tb + "/events.out.tfevents."), std::string::npos) << out;
  EXPECT_NE(out.find("No space left on device; saved checkpoint"), std::string::npos) << out;
  int files = 0;
  for (const auto& f : std::filesystem::directory_iterator(tb)) {
    ++files;
    const std::string events = read_file(f.path().string());
    EXPECT_GT(events.size(), 100u);
    EXPECT_TRUE(whole_records(events)) << f.path() << ": " << events.size() << " bytes";
  }
  EXPECT_EQ(files, 1);
}

TEST(Faults, AFullDiskDuringASaveExitsOneAndKeepsTheLastCheckpoint) {
  TempDir tmp;
  SmallDisk disk(tmp, "8m");
  REQUIRE_MOUNTED(disk);
  const std::string run = disk.path + "/run";
  Background b = start(tmp, "save",
                       kBin + " train " + quick_config(tmp, run) +
                           " train.max_steps=100000 log.interval=100000 "
                           "checkpoint.interval=20 checkpoint.keep_last=1");
  ASSERT_TRUE(wait_for([&] { return fs::exists(run + "/checkpoints/latest"); }, 60))
      << read_file(b.log);
  fill(disk.path);
  ASSERT_TRUE(wait_for([&] { return b.finished(); }, 60)) << read_file(b.log);
  const std::string out = read_file(b.log);
  EXPECT_EQ(b.exit_code(), 1) << out;
  EXPECT_NE(out.find("cannot save checkpoint"), std::string::npos) << out;
  // The checkpoint `latest` names is complete and verifies.
  const std::string latest = read_file(run + "/checkpoints/latest");
  ASSERT_FALSE(latest.empty());
  const auto inspect =
      run_command(kBin + " inspect " + run + "/checkpoints/" + latest.substr(0, latest.size() - 1));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("checksums: every tensor verified"), std::string::npos);
}

// A record cut short by a kill is dropped on resume, with a notice.
TEST(Faults, ResumeDropsARecordCutShortByAKill) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const std::string cfg = quick_config(tmp, run);
  ASSERT_EQ(run_command(kBin + " train " + cfg + " train.max_steps=4").exit_code, 0);
  const std::string metrics = read_file(run + "/metrics.jsonl");
  write_file(run + "/metrics.jsonl", metrics + "{\"step\": 5, \"train_lo");
  const auto r = run_command(kBin + " train " + cfg + " train.max_steps=6");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("dropped 1 unreadable line"), std::string::npos) << r.output;
  const std::string after = read_file(run + "/metrics.jsonl");
  EXPECT_EQ(after.substr(0, metrics.size()), metrics);
  EXPECT_EQ(after.find("train_lo\n"), std::string::npos) << after;
  EXPECT_NE(after.find("{\"step\": 6,"), std::string::npos) << after;
}

// --- several ranks --------------------------------------------------------------------------

TEST(Faults, RanksStartedWithDifferentConfigsNameTheFirstKey) {
  TempDir tmp;
  const std::string cfg = quick_config(tmp, tmp / "run");
  const auto r = run_command(testing::mpiexec_command(1) + kBin + " train " + cfg +
                             " train.seed=1 : -n 1 " + kBin + " train " + cfg + " train.seed=2");
  EXPECT_NE(r.exit_code, 0) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << r.output;
  EXPECT_NE(r.output.find("the ranks were started with different configs: rank 1 has train.seed "
                          "= 2 where rank 0 has 1"),
            std::string::npos)
      << r.output;
}

// SIGSTOP one of two tensor-parallel ranks: the job ends within runtime.comm_timeout plus a
// few seconds, with one message naming the operation, the group and the step.
TEST(Faults, AHungRankEndsTheJobWithinTheDeadline) {
  TempDir tmp;
  const std::string run = tmp / "run";
  const std::string cfg = quick_config(tmp, run);
  Background b = start(tmp, "hung",
                       testing::mpiexec_command(2) + kBin + " train " + cfg +
                           " train.max_steps=100000 parallel.tp=2 "
                           "runtime.comm_timeout=5");
  ASSERT_TRUE(wait_for([&] { return lines_of(run + "/metrics.jsonl") >= 2; }, 60))
      << read_file(b.log);
  const std::vector<pid_t> ranks = polyhead_pids(cfg);
  ASSERT_EQ(ranks.size(), 2u);
  kill(ranks[1], SIGSTOP);
  const auto stopped = Clock::now();
  const bool ended = wait_for([&] { return b.finished(); }, 30);
  const double took = std::chrono::duration<double>(Clock::now() - stopped).count();
  for (pid_t p : polyhead_pids(cfg)) kill(p, SIGKILL);  // never leave a stopped process behind
  ASSERT_TRUE(ended) << read_file(b.log);
  const std::string out = read_file(b.log);
  EXPECT_NE(b.exit_code(), 0) << out;
  EXPECT_LE(took, 15.0) << out;
  EXPECT_EQ(count_occurrences(out, "did not complete within runtime.comm_timeout = 5 s"), 1) << out;
  // Which collective the healthy rank waits in depends on the moment (a tensor-parallel
  // all-reduce, or the world's agreement on signals): the message names it and its group.
  EXPECT_NE(out.find(": MPI_"), std::string::npos) << out;
  EXPECT_NE(out.find(" group (2 ranks) did not complete"), std::string::npos) << out;
  EXPECT_NE(out.find("at step "), std::string::npos) << out;
}

}  // namespace
}  // namespace ph
