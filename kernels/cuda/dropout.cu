// Dropout: launchers around kernels/cuda/dropout_kernels.cuh.
#include "kernels/cuda/dropout.h"
#include "kernels/cuda/dropout_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void dropout_forward(float* out, const float* inp, int rows, int cols, const DropoutSpec& d,
                     const DropoutBlock& blk, cudaStream_t stream) {
  impl::dropout_forward(StreamLauncher{stream}, out, inp, rows, cols, d, blk);
}

void dropout_backward(float* dinp, const float* dout, int rows, int cols, const DropoutSpec& d,
                      const DropoutBlock& blk, cudaStream_t stream) {
  impl::dropout_forward(StreamLauncher{stream}, dinp, dout, rows, cols, d, blk);
}

}  // namespace ph::cuda
