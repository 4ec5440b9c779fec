// polyhead entry point: MPI start-up, the command line, and one clear message on failure.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "io/config.h"
#include "parallel/runtime.h"
#include "trainer/cli.h"

int main(int argc, char** argv) {
  ph::MpiRuntime mpi(&argc, &argv);
  // Rank 0 speaks for the job: the other ranks' standard output is discarded (errors still
  // reach standard error through fatal_exit).
  if (!mpi.is_root() && !std::freopen("/dev/null", "w", stdout)) return 1;
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    return ph::run_cli(args);
  } catch (const ph::InputError& e) {
    // Bad input is the same on every rank: printed once, by rank 0.
    ph::fatal_exit(e.what(), 2, /*all_ranks_agree=*/true);
  } catch (const ph::IoError& e) {
    ph::fatal_exit(e.what(), 1, /*all_ranks_agree=*/true);
  } catch (const ph::AgreedError& e) {
    ph::fatal_exit(e.what(), 1, /*all_ranks_agree=*/true);
  } catch (const std::exception& e) {
    ph::fatal_exit(e.what(), 1, /*all_ranks_agree=*/false);
  }
}
