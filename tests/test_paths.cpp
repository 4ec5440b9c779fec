// Where the tests find what they run (tests/test_paths.h): the environment at run time, one
// message naming a required variable that is unset, bench_train found beside the polyhead
// binary, and nested mpiexec jobs that keep a relocated Open MPI's variables but not the ones
// MPI_Init gave this process. tests/paths_runtime.sh runs test programs copied elsewhere.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>

#include "tests/test_util.h"

namespace ph {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Sets (or with nullopt unsets) a variable for the scope, restoring the old value after.
class ScopedVariable {
 public:
  ScopedVariable(std::string name, const std::optional<std::string>& value)
      : name_(std::move(name)) {
    if (const char* v = std::getenv(name_.c_str())) old_ = v;
    if (value) {
      setenv(name_.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ~ScopedVariable() {
    if (old_) {
      setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedVariable(const ScopedVariable&) = delete;
  ScopedVariable& operator=(const ScopedVariable&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// The message of what `f` threw ("" when it returned).
template <class F>
std::string thrown_message(F f) {
  try {
    f();
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

TEST(Paths, ComeFromTheEnvironment) {
  ScopedVariable bin("POLYHEAD_BINARY", "/elsewhere/bin/polyhead");
  ScopedVariable src("POLYHEAD_SOURCE_DIR", "/elsewhere/src");
  ScopedVariable mpi("POLYHEAD_MPIEXEC", "/elsewhere/mpi/bin/mpiexec");
  EXPECT_EQ(testing::polyhead_binary(), "/elsewhere/bin/polyhead");
  EXPECT_EQ(testing::source_dir(), "/elsewhere/src");
  EXPECT_EQ(testing::mpiexec(), "/elsewhere/mpi/bin/mpiexec");
  EXPECT_NE(testing::mpiexec_command(3).find(" /elsewhere/mpi/bin/mpiexec -n 3 "),
            std::string::npos)
      << testing::mpiexec_command(3);
}

TEST(Paths, MpiexecIsFoundOnPathWhenUnset) {
  ScopedVariable mpi("POLYHEAD_MPIEXEC", std::nullopt);
  EXPECT_EQ(testing::mpiexec(), "mpiexec");
}

TEST(Paths, AnUnsetRequiredVariableIsNamedOnce) {
  const std::optional<std::string> unset_or_empty[] = {std::nullopt, std::string()};
  for (const char* name : {"POLYHEAD_BINARY", "POLYHEAD_SOURCE_DIR"}) {
    for (const std::optional<std::string>& value : unset_or_empty) {
      ScopedVariable v(name, value);
      const std::string m = thrown_message([&] {
        return std::string(name) == "POLYHEAD_BINARY" ? testing::polyhead_binary()
                                                      : testing::source_dir();
      });
      EXPECT_EQ(m.find(std::string(name) + " is not set: "), 0u) << m;
      EXPECT_EQ(testing::count_occurrences(m, name), 1) << m;
      EXPECT_NE(m.find("ctest sets it"), std::string::npos) << m;
    }
  }
}

TEST(Paths, BenchTrainIsFoundBesideThePolyheadBinary) {
  TempDir tmp;
  ScopedVariable bench("POLYHEAD_BENCH_TRAIN", std::nullopt);
  ScopedVariable bin("POLYHEAD_BINARY", tmp / "polyhead");
  // Neither a build tree's bench/bench_train nor a flat folder's bench_train.
  const std::string m = thrown_message([] { return testing::bench_train_binary(); });
  EXPECT_EQ(m.find("POLYHEAD_BENCH_TRAIN is not set"), 0u) << m;
  EXPECT_NE(m.find(tmp / "bench/bench_train"), std::string::npos) << m;

  testing::write_file(tmp / "bench_train", "");  // a flat bin/ folder
  EXPECT_EQ(testing::bench_train_binary(), tmp / "bench_train");
  fs::create_directory(tmp / "bench");
  testing::write_file(tmp / "bench/bench_train", "");  // a build tree
  EXPECT_EQ(testing::bench_train_binary(), tmp / "bench/bench_train");
  ScopedVariable set("POLYHEAD_BENCH_TRAIN", "/elsewhere/bench_train");
  EXPECT_EQ(testing::bench_train_binary(), "/elsewhere/bench_train");
}

// A relocated Open MPI needs OPAL_PREFIX, OPAL_PKGLIBDIR, PMIX_PREFIX, OMPI_MCA_... in nested
// jobs too; the variables MPI_Init added to this singleton must not reach them.
TEST(Paths, NestedMpiexecKeepsTheVariablesFromBeforeMpiInitOnly) {
  ScopedVariable before("OPAL_PH_TEST_BEFORE_INIT", "kept");
  // As if it had been set before MPI_Init (a bundle's env.sh), when tests/test_main.cpp took
  // its snapshot.
  testing::mpi_variables_before_init().insert("OPAL_PH_TEST_BEFORE_INIT");
  ScopedVariable after("PMIX_PH_TEST_AFTER_INIT", "leaked");  // as MPI_Init adds its own
  const std::string cmd = testing::mpiexec_command(1);
  EXPECT_NE(cmd.find(" -u PMIX_PH_TEST_AFTER_INIT "), std::string::npos) << cmd;
  EXPECT_EQ(cmd.find("OPAL_PH_TEST_BEFORE_INIT"), std::string::npos) << cmd;

  const testing::RunResult r = testing::run_command(cmd + "env");
  testing::mpi_variables_before_init().erase("OPAL_PH_TEST_BEFORE_INIT");
  ASSERT_EQ(r.exit_code, 0) << cmd << "\n" << r.output;
  const std::string lines = "\n" + r.output;  // every variable after a newline
  EXPECT_NE(lines.find("\nOPAL_PH_TEST_BEFORE_INIT=kept\n"), std::string::npos) << r.output;
  // And every other one this process had before MPI_Init (ctest's OMPI_ALLOW_RUN_AS_ROOT; a
  // bundle's OPAL_PREFIX, OPAL_SYSCONFDIR, ...), with its value.
  for (const std::string& name : testing::mpi_variables_before_init()) {
    const char* value = std::getenv(name.c_str());
    if (value == nullptr) continue;  // MPI_Init removed it: nothing to pass on
    const std::string entry = name + "=" + value + "\n";
    EXPECT_NE(lines.find("\n" + entry), std::string::npos) << entry << r.output;
  }
  EXPECT_EQ(r.output.find("PMIX_PH_TEST_AFTER_INIT"), std::string::npos) << r.output;
  // The nested job is a job of its own, of one rank.
  EXPECT_NE(lines.find("\nOMPI_COMM_WORLD_SIZE=1\n"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace ph
