// Row gather and scatter-add: launchers around kernels/cuda/rows_kernels.cuh.
#include "kernels/cuda/rows.h"
#include "kernels/cuda/rows_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void gather_rows(float* out, const float* inp, const int32_t* rows, int n, int C,
                 cudaStream_t stream) {
  impl::gather_rows(StreamLauncher{stream}, out, inp, rows, n, C);
}

void scatter_add_rows(float* dinp, const float* dout, const int32_t* rows, int n, int C,
                      cudaStream_t stream) {
  impl::scatter_add_rows(StreamLauncher{stream}, dinp, dout, rows, n, C);
}

}  // namespace ph::cuda
