// How the CPU backend shares the cores with OpenBLAS (internal to kernels/cpu).
//
// OpenMP owns the threads: every kernel parallelises over fixed blocks of its output and
// calls sgemm single-threaded on each block. Measured on the 2-core target, splitting a
// 4096x1536x384 GEMM into 256-row blocks over two OpenMP threads runs as fast as (or faster
// than) OpenBLAS's own two threads, and it buys two properties: the two thread pools never
// compete for the cores (OpenBLAS's pthreads would otherwise oversubscribe when called from
// inside an OpenMP region), and a block is always computed by the same call whatever the
// thread count, so every result is bit-identical for any OMP_NUM_THREADS.
#pragma once
#include <cblas.h>

namespace ph::cpu {

// Called at the top of every kernel that uses sgemm (cheap: it sets a counter).
inline void blas_single_threaded() {
  openblas_set_num_threads(1);
}

}  // namespace ph::cpu
