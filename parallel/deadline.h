// A deadline on every blocking host collective: no rank waits forever for a peer that died or
// hangs (SIGSTOP, a dead node, a deadlocked peer). The thread that calls MPI marks each
// blocking operation with a Deadline scope; a watchdog thread ends the job when one has lasted
// longer than runtime.comm_timeout, printing one message that names the operation, its group
// and the step:
//
//   polyhead: error (rank 0): MPI_Allreduce of 8 floats on the tensor-parallel group (2 ranks)
//   did not complete within runtime.comm_timeout = 5 s (at step 12): a rank of the group is
//   hung or dead; ending the job
//
// The healthy ranks of a hung group all reach the deadline at about the same time; rank r
// reports 0.5 s × (r mod 16) later than rank 0, so that the first report ends the job (mpirun
// tears the other ranks down, the hung one included) before the others print. The watchdog
// makes no MPI call (MPI runs with MPI_THREAD_FUNNELED): it writes the message and exits the
// process with status 1, which makes mpirun end the job.
//
// Scopes nest (a checkpoint write holds collectives): the innermost is the one timed, and
// leaving it restarts the clock of the one around it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ph {

// The limit of every scope, in seconds (runtime.comm_timeout; 600 until set). Process-wide.
void set_comm_timeout(double seconds);
// The training step named in messages (0 or less: "before the first step").
void set_deadline_step(int64_t step);

class Deadline {
 public:
  // operation: e.g. "MPI_Allreduce"; what: "of 8 floats" (may be empty); group: e.g.
  // "tensor-parallel"; group_size: ranks of the group. The strings must outlive the scope
  // (string literals, or the communicator's name).
  Deadline(const char* operation, const char* what, size_t count, const char* group,
           int group_size);
  ~Deadline();
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
};

// The message the watchdog prints for the innermost open scope after `waited` seconds ("" when
// no scope is open). For tests.
std::string deadline_report(double waited);

}  // namespace ph
