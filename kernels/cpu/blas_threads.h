// How the CPU backend shares the cores with OpenBLAS (internal to kernels/cpu).
//
// OpenMP owns the threads: every kernel parallelises over fixed blocks of its output and
// calls sgemm single-threaded on each block. Measured on the 2-core target (OpenBLAS 0.3.21,
// pthread build): a 4096x1536x384 GEMM split into 256-row blocks over two OpenMP threads runs
// as fast as one OpenBLAS call on two threads (~250 GFLOP/s with OPENBLAS_CORETYPE=Haswell,
// ~450-500 without), while OpenBLAS left multi-threaded inside an OpenMP region made the
// attention kernel 30x slower (each call's threads fighting the OpenMP team for the cores).
// Fixed blocks also mean a block is always computed by the same call whatever the thread
// count, so results are bit-identical for any OMP_NUM_THREADS.
#pragma once
#include <cblas.h>

namespace ph::cpu {

// Called at the top of every kernel that uses sgemm (~2 ns: it sets a counter).
inline void blas_single_threaded() {
  openblas_set_num_threads(1);
}

}  // namespace ph::cpu
