// Token + position embedding: launchers around kernels/cuda/embedding_kernels.cuh.
#include "kernels/cuda/embedding.h"
#include "kernels/cuda/embedding_kernels.cuh"
#include "kernels/cuda/stream_launcher.cuh"

namespace ph::cuda {

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* pos, int B,
                       int T, int C, int vocab_start, int V_local, float scale,
                       cudaStream_t stream) {
  impl::embedding_forward(StreamLauncher{stream}, out, tokens, wte, pos, B, T, C, vocab_start,
                          V_local, scale);
}

void embedding_backward(float* dwte, float* dpos, const float* dout, const int32_t* tokens, int B,
                        int T, int C, int vocab_start, int V_local, float scale,
                        cudaStream_t stream) {
  impl::embedding_backward(StreamLauncher{stream}, dwte, dpos, dout, tokens, B, T, C, vocab_start,
                           V_local, scale);
}

void sinusoidal_table(float* table, int T, int C, cudaStream_t stream) {
  impl::sinusoidal_table(StreamLauncher{stream}, table, T, C);
}

}  // namespace ph::cuda
