// A team of helper threads that wait for work by spinning briefly before they sleep, for the
// short products that incremental decoding issues back to back (kernels/cpu/packed_matmul.h).
// Under OMP_WAIT_POLICY=PASSIVE (the tuned setting on a shared 2-core machine: PyTorch is 3.5x
// slower with spinning OpenMP threads) every OpenMP parallel region wakes its threads with a
// futex, and a decoding step has ~20 products of 0.1-0.5 ms: the wake-ups cost a tenth of the
// step. A helper spins (yielding its core to any other runnable thread) for kSpinMicros after
// its last task, then sleeps until the next run; sgemm's own threads behave the same way.
#pragma once
#include <functional>

namespace ph::cpu {

constexpr int kSpinMicros = 200;

// Runs fn(task) for every task in [0, tasks), each once, over the calling thread and up to
// `helpers` helper threads (at most omp_get_num_procs() - 1; the team grows to the largest
// number asked), and returns when all are done. Tasks are handed out one at a time, so no
// result may depend on which thread runs a task; fn must not throw. Runs from several threads are
// serialised; a run inside a run, and a run in the child of a fork(), run on the calling thread
// alone. On a helper, OpenMP runs on that thread alone (omp_set_num_threads(1)).
void spin_team_run(int tasks, int helpers, const std::function<void(int)>& fn);

}  // namespace ph::cpu
