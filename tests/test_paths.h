// Where the tests find what they run, read from the environment at run time (never compiled
// in), so that the test executables can be carried with the binaries to another machine where
// everything lives elsewhere. ctest sets every variable (tests/CMakeLists.txt):
//   POLYHEAD_BINARY       the polyhead executable (required by the tests that run it)
//   POLYHEAD_BENCH_TRAIN  the bench_train executable; unset: bench/bench_train or bench_train
//                         in the polyhead binary's folder, whichever exists
//   POLYHEAD_SOURCE_DIR   the tree holding configs/, tests/fixtures/, bench/, tools/, README.md
//                         (required by the tests that read them)
//   POLYHEAD_MPIEXEC      the mpiexec of nested jobs; unset: "mpiexec" on PATH
// A required variable that is unset is reported once, by name: read during static
// initialisation (`const std::string kBin = polyhead_binary();`) the program fails before any
// test runs (tests/test_main.cpp); read inside a test, that test fails with the message.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace ph::testing {

// Required variables found unset outside a test, as messages for tests/test_main.cpp.
inline std::vector<std::string>& missing_path_messages() {
  static std::vector<std::string> messages;
  return messages;
}

// Reports `message` (a test fails; outside one, it is kept for test_main) and returns "".
inline std::string path_missing(const std::string& message) {
  if (::testing::UnitTest::GetInstance()->current_test_info() != nullptr)
    throw std::runtime_error(message);
  std::vector<std::string>& m = missing_path_messages();
  if (std::find(m.begin(), m.end(), message) == m.end()) m.push_back(message);
  return "";
}

inline std::string required_variable(const std::string& name, const std::string& what) {
  const char* v = std::getenv(name.c_str());
  if (v != nullptr && *v != '\0') return v;
  return path_missing(name + " is not set: " + what + " (ctest sets it; see tests/CMakeLists.txt)");
}

inline std::string polyhead_binary() {
  return required_variable("POLYHEAD_BINARY", "the path of the polyhead binary");
}

inline std::string source_dir() {
  return required_variable("POLYHEAD_SOURCE_DIR",
                           "the polyhead source tree (configs/, tests/fixtures/, bench/, tools/)");
}

inline std::string bench_train_binary() {
  const char* v = std::getenv("POLYHEAD_BENCH_TRAIN");
  if (v != nullptr && *v != '\0') return v;
  const std::string bin = polyhead_binary();
  if (bin.empty()) return "";
  const std::filesystem::path dir = std::filesystem::path(bin).parent_path();
  const std::filesystem::path in_build_tree = dir / "bench" / "bench_train";
  const std::filesystem::path flat = dir / "bench_train";
  if (std::filesystem::exists(in_build_tree)) return in_build_tree.string();
  if (std::filesystem::exists(flat)) return flat.string();
  return path_missing("POLYHEAD_BENCH_TRAIN is not set and neither " + in_build_tree.string() +
                      " nor " + flat.string() +
                      " exists: the path of the bench_train binary (ctest sets it; see "
                      "tests/CMakeLists.txt)");
}

inline std::string mpiexec() {
  const char* v = std::getenv("POLYHEAD_MPIEXEC");
  return v != nullptr && *v != '\0' ? v : "mpiexec";
}

// The MPI variables (OMPI_, PMIX_, OPAL_) of a NAME=value entry: its NAME, else "".
inline std::string mpi_variable_name(const std::string& entry) {
  if (!entry.starts_with("OMPI_") && !entry.starts_with("PMIX_") && !entry.starts_with("OPAL_"))
    return "";
  return entry.substr(0, entry.find('='));
}

// The MPI variables present before MPI_Init: a relocated Open MPI's (OPAL_PREFIX,
// OPAL_PKGLIBDIR, PMIX_PREFIX, OMPI_MCA_*, ...), which nested jobs need too.
inline std::set<std::string>& mpi_variables_before_init() {
  static std::set<std::string> names;
  return names;
}

// Called by tests/test_main.cpp before MPI_Init.
inline void snapshot_mpi_variables() {
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string name = mpi_variable_name(*e);
    if (!name.empty()) mpi_variables_before_init().insert(name);
  }
}

// The MPI variables that MPI_Init added: this test process is an MPI singleton, and they must
// not leak into a nested mpiexec.
inline std::vector<std::string> mpi_variables_added() {
  std::vector<std::string> added;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string name = mpi_variable_name(*e);
    if (!name.empty() && !mpi_variables_before_init().contains(name)) added.push_back(name);
  }
  return added;
}

// A shell command prefix that runs what follows under mpiexec with n ranks (oversubscribed,
// unbound; allowed as root), without the variables MPI_Init added to this process.
inline std::string mpiexec_command(int n) {
  std::string cmd = "env";
  for (const std::string& name : mpi_variables_added()) cmd += " -u " + name;
  return cmd + " OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " + mpiexec() + " -n " +
         std::to_string(n) + " --oversubscribe --bind-to none ";
}

}  // namespace ph::testing
