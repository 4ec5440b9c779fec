// Linear layer through OpenBLAS sgemm on fixed blocks (see blas_threads.h); in bf16 mode the
// same calls on rounded copies of the operands, so bf16 results are bit-identical for any
// thread count too.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstddef>
#include <stdexcept>
#include <string>

#include "kernels/common/bf16.h"
#include "kernels/cpu/blas_threads.h"

namespace ph::cpu {

namespace {

constexpr int kRowBlock = 256;  // rows of inp / dinp per sgemm
constexpr int kMinTasks = 4;    // forward: fewer row blocks than this split the columns too
constexpr int kDwTile = 768;    // largest side of a dw tile (see matmul_backward)
constexpr int kColBlock = 64;   // channels per task when summing dbias over rows

int blocks_of(int n, int block) {
  return (n + block - 1) / block;
}

// Splits n into equal blocks of at most max_block, rounded up to a multiple of 16 floats:
// 384 -> 2 x 192, 1152 -> 5 x 240 (the last shorter), 1536 -> 6 x 256. A function of the
// shape only, never of the thread count.
int even_block(int n, int max_block) {
  const int per = blocks_of(n, blocks_of(n, max_block));
  return (per + 15) / 16 * 16;
}

}  // namespace

std::array<size_t, Bf16Operands::kSlots> Bf16Operands::sizes(int N, int IC, int OC) {
  const size_t n = static_cast<size_t>(N), ic = static_cast<size_t>(IC);
  const size_t oc = static_cast<size_t>(OC);
  return {n * ic, oc * ic, n * oc};
}

void Bf16Operands::reserve(int N, int IC, int OC) {
  const std::array<size_t, kSlots> need = sizes(N, IC, OC);
  for (int k = 0; k < kSlots; ++k)
    if (buffers_[k].size() < need[k]) buffers_[k].resize(need[k]);
}

const float* Bf16Operands::round(Slot slot, const float* src, size_t n) {
  std::vector<float>& buf = buffers_[slot];
  if (buf.size() < n)
    throw std::logic_error("bf16 linear layer: an operand of " + std::to_string(n) +
                           " elements exceeds the " + std::to_string(buf.size()) +
                           " reserved (Backend::reserve_linear) when the model was built");
  float* dst = buf.data();
  const auto count = static_cast<std::ptrdiff_t>(n);
#pragma omp parallel for simd schedule(static)
  for (std::ptrdiff_t i = 0; i < count; ++i) dst[i] = round_bf16(src[i]);
  return dst;
}

void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int IC,
                    int OC, Bf16Operands* bf16) {
  // out [N, OC] = inp [N, IC] @ w [OC, IC]^T (+ bias): w is read transposed in place.
  if (bf16) {
    inp = bf16->round(Bf16Operands::kInp, inp, static_cast<size_t>(N) * IC);
    w = bf16->round(Bf16Operands::kWeight, w, static_cast<size_t>(OC) * IC);
  }
  // Tasks: blocks of kRowBlock rows; when there are fewer than kMinTasks of them (incremental
  // decoding runs one row per hypothesis: 128 rows would be one task, one busy thread), each
  // row block is also split into kMinTasks / blocks column blocks of a multiple of 16. A
  // function of the shape only, never of the thread count.
  // More than kRowBlock rows are cut into an even number of near-equal blocks of at most
  // kRowBlock: 1540 rows (a packed batch) are 8 blocks of 193, not 6 of 256 and one of 4 that
  // would leave one of two threads idle for a block.
  blas_single_threaded();
  const int rb = N <= kRowBlock ? kRowBlock : blocks_of(N, 2 * blocks_of(N, 2 * kRowBlock));
  const int row_blocks = blocks_of(N, rb);
  const int cb =
      row_blocks >= kMinTasks ? OC : even_block(OC, blocks_of(OC * row_blocks, kMinTasks));
  const int col_blocks = blocks_of(OC, cb);
#pragma omp parallel for schedule(static)
  for (int task = 0; task < row_blocks * col_blocks; ++task) {
    const int n0 = task / col_blocks * rb, c0 = task % col_blocks * cb;
    const int rows = std::min(rb, N - n0), cols = std::min(cb, OC - c0);
    float* y = out + static_cast<size_t>(n0) * OC + c0;
    if (bias) {
      for (int r = 0; r < rows; ++r)
        std::copy(bias + c0, bias + c0 + cols, y + static_cast<size_t>(r) * OC);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, IC, 1.0f,
                inp + static_cast<size_t>(n0) * IC, IC, w + static_cast<size_t>(c0) * IC, IC,
                bias ? 1.0f : 0.0f, y, OC);
  }
}

void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, Bf16Operands* bf16, bool accumulate) {
  // The three products are independent; one parallel region runs them. The dw tiles come
  // first, then the dinp row blocks, handed out one at a time: the large tiles start at once
  // and the small row blocks even out the threads' ends (one 384 x 384 tile is half of a
  // layer's backward, and the other thread takes the dinp rows meanwhile). Every task is one
  // fixed sgemm call or one ordered loop, so no result depends on the thread count.
  // Tiles of up to 768 x 768: dw sums over all N rows, and OpenBLAS packs the tile's strip of
  // dout and of inp again for every tile; with 256 x 192 tiles (the limit was 256) the packing
  // took ~12% of the dw products, at 768 ~2% (single-threaded sgemm at N = 4096: 78-84 against
  // 87-91 GFLOP/s on the 2-core target).
  // In bf16 mode the products read rounded copies (gemm_dout, gemm_inp, gemm_w); dbias sums
  // the fp32 dout.
  const float* gemm_dout = dout;
  const float* gemm_inp = inp;
  const float* gemm_w = w;
  if (bf16) {
    gemm_dout = bf16->round(Bf16Operands::kDout, dout, static_cast<size_t>(N) * OC);
    gemm_inp = bf16->round(Bf16Operands::kInp, inp, static_cast<size_t>(N) * IC);
    if (dinp) gemm_w = bf16->round(Bf16Operands::kWeight, w, static_cast<size_t>(OC) * IC);
  }
  blas_single_threaded();
  const int row_blocks = dinp ? blocks_of(N, kRowBlock) : 0;
  const int to = even_block(OC, kDwTile), ti = even_block(IC, kDwTile);
  const int dw_rows = blocks_of(OC, to), dw_cols = blocks_of(IC, ti);
  const int bias_blocks = dbias ? blocks_of(OC, kColBlock) : 0;
  const int tiles = dw_rows * dw_cols;
#pragma omp parallel
  {
#pragma omp for schedule(dynamic, 1) nowait
    for (int task = 0; task < tiles + row_blocks; ++task) {
      if (task < tiles) {  // dw [OC, IC] += dout^T [OC, N] @ inp [N, IC], tile by tile
        const int o0 = task / dw_cols * to, i0 = task % dw_cols * ti;
        const int orows = std::min(to, OC - o0), icols = std::min(ti, IC - i0);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, orows, icols, N, 1.0f, gemm_dout + o0,
                    OC, gemm_inp + i0, IC, 1.0f, dw + static_cast<size_t>(o0) * IC + i0, IC);
        continue;
      }
      // dinp [N, IC] += dout [N, OC] @ w [OC, IC], block by block
      const int n0 = (task - tiles) * kRowBlock;
      const int rows = std::min(kRowBlock, N - n0);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, IC, OC, 1.0f,
                  gemm_dout + static_cast<size_t>(n0) * OC, OC, gemm_w, IC,
                  accumulate ? 1.0f : 0.0f, dinp + static_cast<size_t>(n0) * IC, IC);
    }
    // dbias [OC] += column sums of dout, each block of columns summed over rows in order
#pragma omp for schedule(static)
    for (int blk = 0; blk < bias_blocks; ++blk) {
      const int c0 = blk * kColBlock;
      const int nc = std::min(kColBlock, OC - c0);
      float acc[kColBlock] = {};
      for (int n = 0; n < N; ++n) {
        const float* d = dout + static_cast<size_t>(n) * OC + c0;
        for (int c = 0; c < nc; ++c) acc[c] += d[c];
      }
      for (int c = 0; c < nc; ++c) dbias[c0 + c] += acc[c];
    }
  }
}

}  // namespace ph::cpu
