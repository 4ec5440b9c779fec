// Resume discovery (io/checkpoint.h find_resume_checkpoint): the `latest` pointer, else the
// newest step checkpoint that verifies.
#include <filesystem>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/checkpoint_hdf5.h"
#include "parallel/agreement.h"
#include "parallel/mpi_communicator.h"

namespace ph {

namespace fs = std::filesystem;

namespace {

// Collective: "" when the checkpoint at path verifies, else why not (one line). A file of a
// newer format is not damaged: its error propagates.
std::string verify_problem(const std::string& path, MPI_Comm comm) {
  try {
    verify_checkpoint(path, comm);
    return "";
  } catch (const ckpt::NewerFormatError&) {
    throw;
  } catch (const InputError& e) {
    return e.what();
  }
}

std::string join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ", ") + p;
  return out;
}

}  // namespace

ResumePoint find_resume_checkpoint(const std::string& dir, MPI_Comm comm) {
  MpiCommunicator group(comm);
  const std::string pointer = (fs::path(dir) / "latest").string();
  // Rank 0 reads the directory; the ranks then verify the candidates together.
  std::string target, problem, listing;
  int64_t missing = 0;  // no pointer: a fresh directory unless step files exist
  agree(group, [&] {
    if (group.rank() != 0) return;
    try {
      target = latest_checkpoint(dir);
      missing = target.empty() ? 1 : 0;
      if (missing) problem = "checkpoint pointer " + pointer + " is missing";
    } catch (const InputError& e) {
      problem = e.what();
    }
    if (target.ends_with(".tmp")) {
      problem = "checkpoint pointer " + pointer + " names " + fs::path(target).filename().string() +
                ", an unfinished save";
      target.clear();
    }
    for (const auto& [step, path] : step_checkpoints(dir)) listing += path + '\0';
  });
  group.broadcast(&missing, 1, 0);
  group.broadcast(target, 0);
  group.broadcast(problem, 0);
  group.broadcast(listing, 0);
  std::vector<std::string> steps;
  for (size_t start = 0, end; start < listing.size(); start = end + 1) {
    end = listing.find('\0', start);
    steps.push_back(listing.substr(start, end - start));
  }

  if (!target.empty()) {
    const std::string why = verify_problem(target, comm);
    if (why.empty()) return {target, ""};
    problem = "checkpoint pointer " + pointer + " names " + fs::path(target).filename().string() +
              ", which fails verification: " + why;
  }
  if (missing && steps.empty()) return {"", ""};  // nothing saved yet: a fresh run
  std::vector<std::string> damaged;
  for (const std::string& candidate : steps) {
    if (candidate == target) continue;  // verified above
    const std::string why = verify_problem(candidate, comm);
    if (why.empty()) {
      std::string note =
          problem + "; resuming from " + candidate + ", the newest checkpoint that verifies";
      if (!damaged.empty()) note += " (skipped, failing verification: " + join(damaged) + ")";
      return {candidate, note};
    }
    damaged.push_back(fs::path(candidate).filename().string());
  }
  if (damaged.empty()) return {"", problem + "; " + dir + " holds no other checkpoint"};
  return {"", problem + "; no checkpoint in " + dir +
                  " verifies (failing verification: " + join(damaged) + ")"};
}

}  // namespace ph
