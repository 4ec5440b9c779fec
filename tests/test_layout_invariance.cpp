// Layout invariance, end to end: the polyhead binary run through mpiexec on (dp, tp) layouts
// (1,1), (2,1), (1,2), (2,2) follows the same loss curve with dropout on, with or without
// ZeRO-1; a checkpoint of one layout resumes on another (exactly on the same layout, bit for
// bit); a layout that does not fit is refused with one message; a rank that dies brings the
// job down; bad input seen by one rank only is agreed and printed once. The GPT runs here; the
// other families in test_layout_families; the shared machinery in tests/layout_runs.h.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/layout_runs.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using namespace testing;

const std::string kSteps30 = "train.max_steps=30";

TEST(LayoutInvariance, LossCurvesWithDropoutMatchOnEveryLayout) {
  const TrainedRun& ref = cached_run(k11, kSteps30);
  ASSERT_NO_FATAL_FAILURE(expect_trained(ref, k11, "reference"));
  ASSERT_EQ(ref.records.size(), 30u) << ref.result.output;
  for (const Layout& l : {k21, k12, k22}) {
    const TrainedRun& run = cached_run(l, kSteps30);
    ASSERT_NO_FATAL_FAILURE(expect_trained(run, l, l.name()));
    EXPECT_EQ(run.records.size(), 30u) << l.name();
    expect_same_curve(run.records, ref.records, 1, 30, 1e-4, 1e-3, l.name() + " vs (1,1)");
  }
  // The curve is a training curve, not a constant: the loss fell. And dropout is really on:
  // without it the curve ends elsewhere (by about 1e-2 relative; the tolerance above is 1e-4).
  EXPECT_LT(ref.records.back().train_loss, ref.records.front().train_loss - 0.5);
  const TrainedRun& no_dropout = cached_run(
      k11, kSteps30 + " model.dropout.embed=0 model.dropout.attn=0 model.dropout.resid=0");
  ASSERT_NO_FATAL_FAILURE(expect_trained(no_dropout, k11, "(1,1) without dropout"));
  ASSERT_EQ(no_dropout.records.size(), 30u);
  EXPECT_FALSE(close_rel(no_dropout.records.back().train_loss, ref.records.back().train_loss, 1e-3))
      << "dropout 0.1 hardly changes the loss: " << no_dropout.records.back().train_loss << " vs "
      << ref.records.back().train_loss;
}

TEST(LayoutInvariance, ZeroOneGivesTheSameLosses) {
  for (const Layout& l : {k21, k22}) {
    const TrainedRun& plain = cached_run(l, kSteps30);
    const TrainedRun& zero = cached_run(l, kSteps30 + " parallel.zero=1");
    ASSERT_NO_FATAL_FAILURE(expect_trained(plain, l, l.name()));
    ASSERT_NO_FATAL_FAILURE(expect_trained(zero, l, l.name() + " zero=1"));
    EXPECT_NE(zero.result.output.find(" zero=1;"), std::string::npos) << zero.result.output;
    EXPECT_EQ(zero.records.size(), 30u);
    expect_same_curve(zero.records, plain.records, 1, 30, 1e-4, -1, l.name() + " zero=1 vs zero=0");
  }
}

TEST(LayoutResume, CheckpointOfOneLayoutResumesOnAnother) {
  TempDir tmp;
  ResumedRuns runs;
  ASSERT_NO_FATAL_FAILURE(
      resume_across(tmp, "gpt", k12, {k21, k11, k12}, "train.max_steps=20", runs));
  expect_bit_exact_resume(runs.base, runs.resumed.back());
}

// Runs a job that must be refused: exit status 2 (bad input), one error line containing every
// needle, and no run directory created.
void expect_layout_refused(int world, const std::string& extra,
                           const std::vector<std::string>& needles) {
  TempDir tmp;
  const RunResult r = run_command(mpiexec_command(world) + kBin + " train " + kConfig + kOverrides +
                                  " run.dir=" + tmp / "run" + " " + extra);
  const std::string what = "mpiexec -n " + std::to_string(world) + " ... " + extra;
  EXPECT_EQ(r.exit_code, 2) << what << "\n" << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << what << "\n" << r.output;
  const std::string error = lines_with(r.output, "polyhead: error");
  for (const std::string& needle : needles)
    EXPECT_NE(error.find(needle), std::string::npos)
        << what << ": expected '" << needle << "' in the error\n"
        << r.output;
  EXPECT_FALSE(fs::exists(tmp / "run")) << what << ": work was done before the layout check";
}

// Early stopping decides on global values, so every rank stops at the same step: the one the
// single-rank run stops at (task_accuracy stays 0 for the first steps: a plateau).
TEST(LayoutInvariance, EarlyStoppingStopsAtTheSameStepOnEveryLayout) {
  const std::string extra =
      "train.max_steps=40 train.eval_interval=2 train.eval_batches=2 train.early_stopping=2 "
      "train.early_stopping_metric=task_accuracy checkpoint.keep_best=true";
  const std::string want =
      "early stopping at step 6: task_accuracy has not improved for 2 evaluations (best 0 at "
      "step 2)";
  for (const Layout& l : {k11, k21, k12}) {
    const TrainedRun& run = cached_run(l, extra);
    ASSERT_NO_FATAL_FAILURE(expect_trained(run, l, "early stopping " + l.name()));
    EXPECT_EQ(count_occurrences(run.result.output, want), 1) << l.name() << run.result.output;
    EXPECT_EQ(run.records.size(), 6u) << l.name();
    EXPECT_TRUE(fs::exists(run.dir + "/checkpoints/best.h5")) << l.name();
  }
}

TEST(LayoutErrors, WorldNotDivisibleByTp) {
  expect_layout_refused(3, "parallel.tp=2",
                        {"parallel.tp=2 does not divide the world size 3", "choose tp in {1, 3}"});
}

TEST(LayoutErrors, HeadsNotDivisibleByTp) {
  expect_layout_refused(2, "parallel.tp=2 model.n_heads=1", {"n_heads", "parallel.tp", "2"});
}

TEST(LayoutErrors, GlobalBatchNotDivisibleByDpTimesMicroBatch) {
  expect_layout_refused(2, "train.global_batch=12",
                        {"train.global_batch=12", "dp x micro_batch = 2 x 4 = 8"});
}

// A job started in the background in its own process group; the destructor kills whatever
// of it is still alive (mpiexec puts every rank in a process group of its own, so the ranks
// are found as mpiexec's descendants).
class BackgroundJob {
 public:
  BackgroundJob(const std::vector<std::string>& argv, const std::string& log) {
    // Everything the child needs is prepared before fork (the parent has threads).
    // Without the variables MPI_Init added to this process (as testing::mpiexec_command).
    const std::vector<std::string> added = mpi_variables_added();
    for (char** e = environ; *e; ++e) {
      const std::string name = mpi_variable_name(*e);
      if (name.empty() || std::find(added.begin(), added.end(), name) == added.end())
        env_.push_back(*e);
    }
    env_.push_back("OMPI_ALLOW_RUN_AS_ROOT=1");
    env_.push_back("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1");
    // A program named without a folder (mpiexec by default) is looked up on PATH here.
    program_ = argv[0];
    std::istringstream path(
        program_.find('/') == std::string::npos && std::getenv("PATH") ? std::getenv("PATH") : "");
    for (std::string dir; std::getline(path, dir, ':');) {
      if (!dir.empty() && access((dir + "/" + argv[0]).c_str(), X_OK) == 0) {
        program_ = dir + "/" + argv[0];
        break;
      }
    }
    std::vector<char*> args, envp;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    for (const std::string& e : env_) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, 1);
        dup2(fd, 2);
      }
      execve(program_.c_str(), args.data(), envp.data());
      _exit(127);
    }
    if (pid_ > 0) setpgid(pid_, pid_);
  }
  ~BackgroundJob() {
    if (pid_ <= 0 || reaped_) return;
    for (pid_t p : descendants()) kill(p, SIGKILL);
    kill(-pid_, SIGKILL);
    int status = 0;
    waitpid(pid_, &status, 0);
  }
  BackgroundJob(const BackgroundJob&) = delete;
  BackgroundJob& operator=(const BackgroundJob&) = delete;

  pid_t pid() const { return pid_; }

  // Polls for the job's end for up to `timeout`; true (with its status) when it ended.
  bool wait_for(std::chrono::seconds timeout, int* status) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid_, status, WNOHANG) == pid_) {
        reaped_ = true;
        return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  // Every live process descending from the job's root.
  std::set<pid_t> descendants() const {
    std::map<pid_t, pid_t> parent;
    for (const auto& entry : fs::directory_iterator("/proc")) {
      const std::string name = entry.path().filename().string();
      if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
      const std::string stat = read_file(entry.path().string() + "/stat");
      const size_t close = stat.rfind(')');
      if (close == std::string::npos) continue;
      std::istringstream rest(stat.substr(close + 1));
      std::string state;
      pid_t ppid = 0;
      rest >> state >> ppid;
      if (state != "Z") parent[std::stoi(name)] = ppid;
    }
    std::set<pid_t> out{pid_};
    for (bool grew = true; grew;) {
      grew = false;
      for (const auto& [p, pp] : parent)
        if (out.count(pp) && out.insert(p).second) grew = true;
    }
    out.erase(pid_);
    return out;
  }

 private:
  std::string program_;
  std::vector<std::string> env_;
  pid_t pid_ = -1;
  bool reaped_ = false;
};

// The variable NAME=value of a process's environment ("" when absent or unreadable).
std::string environment_of(pid_t pid, const std::string& name) {
  const std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
  std::istringstream in(env);
  std::string entry;
  while (std::getline(in, entry, '\0'))
    if (entry.starts_with(name + "=")) return entry.substr(name.size() + 1);
  return "";
}

bool alive(pid_t pid) {
  const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  const size_t close = stat.rfind(')');
  return close != std::string::npos && stat.substr(close + 2, 1) != "Z";
}

TEST(LayoutFailure, AKilledRankBringsTheJobDown) {
  TempDir tmp;
  const std::string run_dir = tmp / "run";
  std::vector<std::string> argv = {
      mpiexec(), "-n", "2", "--oversubscribe", "--bind-to", "none", kBin, "train", kConfig};
  std::istringstream overrides(kOverrides);
  for (std::string o; overrides >> o;) argv.push_back(o);
  argv.push_back("train.max_steps=100000");
  argv.push_back("run.dir=" + run_dir);
  BackgroundJob job(argv, tmp / "mpiexec.log");
  ASSERT_GT(job.pid(), 0);

  // Training has started on both ranks once a step has been recorded.
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (read_metrics(run_dir + "/metrics.jsonl").empty()) {
    ASSERT_FALSE(job.wait_for(std::chrono::seconds(0), &status))
        << "the job ended before training\n"
        << read_file(tmp / "mpiexec.log");
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_file(tmp / "mpiexec.log");
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  pid_t rank0 = 0, rank1 = 0;
  for (pid_t p : job.descendants()) {
    const std::string exe = read_file("/proc/" + std::to_string(p) + "/cmdline");
    if (exe.find(kBin) != 0) continue;
    const std::string rank = environment_of(p, "OMPI_COMM_WORLD_RANK");
    if (rank == "0") rank0 = p;
    if (rank == "1") rank1 = p;
  }
  ASSERT_GT(rank0, 0) << "no rank-0 polyhead process under mpiexec " << job.pid();
  ASSERT_GT(rank1, 0) << "no rank-1 polyhead process under mpiexec " << job.pid();
  ASSERT_EQ(kill(rank1, SIGKILL), 0);

  ASSERT_TRUE(job.wait_for(std::chrono::seconds(30), &status))
      << "mpiexec still running 30 s after rank 1 was killed\n"
      << read_file(tmp / "mpiexec.log");
  EXPECT_TRUE(WIFSIGNALED(status) || (WIFEXITED(status) && WEXITSTATUS(status) != 0))
      << "status " << status;
  const std::string log = read_file(tmp / "mpiexec.log");
  EXPECT_NE(log.find("rank 1"), std::string::npos) << log;
  EXPECT_TRUE(log.find("signal 9") != std::string::npos || log.find("Killed") != std::string::npos)
      << log;
  // Rank 0 did not survive the job.
  for (int i = 0; i < 100 && alive(rank0); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_FALSE(alive(rank0)) << "rank 0 (pid " << rank0 << ") outlived mpiexec";
  if (alive(rank0)) kill(rank0, SIGKILL);
}

TEST(LayoutErrors, BadInputOnOneRankOnlyIsPrintedOnce) {
  TempDir tmp;
  const std::string rank_args = kBin + " train " + kConfig + kOverrides + " run.dir=" + tmp / "run";
  // Open MPI's MPMD syntax: rank 1 gets one more override than rank 0.
  const RunResult r = run_command(mpiexec_command(1) + rank_args + " : -n 1 " + rank_args +
                                  " data.train=/nonexistent.bin");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << r.output;
  const std::string error = lines_with(r.output, "polyhead: error");
  // Either the bad path itself, or (found first) the ranks' differing configs, named once.
  const bool names_path = error.find("/nonexistent.bin") != std::string::npos;
  const bool names_mismatch = error.find("different configs") != std::string::npos;
  EXPECT_TRUE(names_path || names_mismatch) << r.output;
  std::printf("one-rank bad input reported as: %s", error.c_str());
}

// An llm.c token shard of `count` byte tokens.
void write_shard(const std::string& path, int count) {
  std::vector<int32_t> header(256, 0);
  header[0] = 20240520;
  header[1] = 1;
  header[2] = count;
  std::vector<uint16_t> tokens(static_cast<size_t>(count));
  for (size_t i = 0; i < tokens.size(); ++i)
    tokens[i] = static_cast<uint16_t>("0123456789+=\n"[i % 13]);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(header.data()), 1024);
  f.write(reinterpret_cast<const char*>(tokens.data()),
          static_cast<std::streamsize>(2 * tokens.size()));
}

TEST(LayoutErrors, DataMissingOnOneRankOnlyIsAgreedAndPrintedOnce) {
  // Both ranks get the very same arguments, but a relative data path resolves in each rank's
  // working directory: rank 0 finds the shard, rank 1 does not. The failing rank is not the
  // one that prints, so the message reaches the output only if the ranks agree on it.
  TempDir tmp;
  fs::create_directories(tmp / "has/data");
  fs::create_directories(tmp / "lacks");
  write_shard(tmp / "has/data/train.bin", 4000);
  const std::string args = kBin + " train " + kConfig + kOverrides +
                           " data.train=data/train.bin data.val=[] run.dir=" + tmp / "run";
  const RunResult r = run_command(mpiexec_command(1) + "--wdir " + tmp / "has" + " " + args +
                                  " : -n 1 --wdir " + tmp / "lacks" + " " + args);
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "polyhead: error"), 1) << r.output;
  EXPECT_EQ(count_occurrences(r.output, "matches no file"), 1) << r.output;
  EXPECT_NE(lines_with(r.output, "polyhead: error").find("data/train.bin"), std::string::npos)
      << r.output;
  EXPECT_FALSE(fs::exists(tmp / "run/metrics.jsonl")) << r.output;
}

}  // namespace
}  // namespace ph
