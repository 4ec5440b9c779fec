// The CUDA kernels of kernels/cuda (embedding, layernorm, activation, residual, dropout, row
// gather / scatter-add, cross-entropy with and without label smoothing, optimizer) against the
// CPU backend. The kernel headers are compiled for the
// host and their grids run on OS threads through tests/cuda_shim.h; each case goes through the
// same driver (impl:: function) the .cu launcher calls, once with the production launch shape
// and with small blocks and capped grids so that every grid-stride loop takes several turns.
//
// Tolerances: where the kernel performs the CPU backend's operations in the CPU backend's
// order (embedding, residual, relu, dropout, row gather / scatter-add, the maximum) the host
// build must agree bit for
// bit. Scales there are powers of two, so that no product rounds and a compiler's choice to
// contract a multiply-add into an FMA (nvcc does; g++ may, depending on flags) cannot change
// a bit: what is compared is the order of the additions.
// Reductions in another order (row sums, softmax normalisers) and GELU (the CPU backend calls
// glibc's vector tanhf, the kernels the scalar one; cancellation near x = -4 turns their
// last-bit difference into ~1e-7 absolute) are compared with tolerances.
#include "tests/cuda_shim.h"  // first: the kernel headers compile against it

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "kernels/common/dropout_group.h"
#include "kernels/common/dropout_mask.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/dropout.h"
#include "kernels/cpu/embedding.h"
#include "kernels/cpu/layernorm.h"
#include "kernels/cpu/optimizer.h"
#include "kernels/cpu/residual.h"
#include "kernels/cpu/rows.h"
#include "kernels/cuda/activation_kernels.cuh"
#include "kernels/cuda/crossentropy_kernels.cuh"
#include "kernels/cuda/dropout_kernels.cuh"
#include "kernels/cuda/embedding_kernels.cuh"
#include "kernels/cuda/layernorm_kernels.cuh"
#include "kernels/cuda/optimizer_kernels.cuh"
#include "kernels/cuda/residual_kernels.cuh"
#include "kernels/cuda/rows_kernels.cuh"

#include "tests/compare_floats.h"
#include "tests/random_data.h"

namespace ph {
namespace {

using cuda::LaunchShape;
using testing::FVec;

const shim::Launcher gpu;

// Small blocks (one or two warps) and grids capped below the work, for the grid-stride loops.
constexpr LaunchShape kOneWarpTwoBlocks{32, 2};
constexpr LaunchShape kTwoWarpsOneBlock{64, 1};
constexpr LaunchShape kOneWarpThreeBlocks{32, 3};

using testing::expect_bits;
using testing::expect_close;
using testing::random_floats;

std::string shape_name(const LaunchShape& s) {
  return "shape {" + std::to_string(s.threads) + ", " + std::to_string(s.max_blocks) + "}";
}

// ---------------------------------------------------------------------------------------------
// activation, residual

TEST(CudaActivation, MatchesCpu) {
  for (const LaunchShape s : {cuda::kActivationShape, kOneWarpThreeBlocks}) {
    for (const size_t n : {size_t{1}, size_t{33}, size_t{1000}}) {
      const std::string what = shape_name(s) + ", n " + std::to_string(n);
      const FVec x = random_floats(n, 1, -4.0f, 4.0f), dout = random_floats(n, 2);
      const FVec d0 = random_floats(n, 3);
      FVec out(n), ref(n);
      cuda::impl::gelu_forward(gpu, out.data(), x.data(), n, s);
      cpu::gelu_forward(ref.data(), x.data(), n);
      expect_close(out, ref, 1e-5, 1e-6, "gelu forward, " + what);
      FVec dx = d0, dref = d0;
      cuda::impl::gelu_backward(gpu, dx.data(), x.data(), dout.data(), n, s);
      cpu::gelu_backward(dref.data(), x.data(), dout.data(), n);
      expect_close(dx, dref, 1e-5, 1e-6, "gelu backward (accumulates), " + what);
      cuda::impl::gelu_erf_forward(gpu, out.data(), x.data(), n, s);
      cpu::gelu_erf_forward(ref.data(), x.data(), n);
      expect_close(out, ref, 1e-5, 1e-6, "gelu_erf forward, " + what);
      dx = d0, dref = d0;
      cuda::impl::gelu_erf_backward(gpu, dx.data(), x.data(), dout.data(), n, s);
      cpu::gelu_erf_backward(dref.data(), x.data(), dout.data(), n);
      expect_close(dx, dref, 1e-5, 1e-6, "gelu_erf backward (accumulates), " + what);
      cuda::impl::tanh_forward(gpu, out.data(), x.data(), n, s);
      cpu::tanh_forward(ref.data(), x.data(), n);
      expect_close(out, ref, 1e-5, 1e-6, "tanh forward, " + what);
      dx = d0, dref = d0;
      cuda::impl::tanh_backward(gpu, dx.data(), x.data(), dout.data(), n, s);
      cpu::tanh_backward(dref.data(), x.data(), dout.data(), n);
      expect_close(dx, dref, 1e-5, 1e-6, "tanh backward (accumulates), " + what);
      dx = d0, dref = d0;
      cuda::impl::relu_forward(gpu, out.data(), x.data(), n, s);
      cpu::relu_forward(ref.data(), x.data(), n);
      expect_bits(out, ref, "relu forward, " + what);
      cuda::impl::relu_backward(gpu, dx.data(), x.data(), dout.data(), n, s);
      cpu::relu_backward(dref.data(), x.data(), dout.data(), n);
      expect_bits(dx, dref, "relu backward (accumulates), " + what);
    }
  }
}

TEST(CudaResidual, MatchesCpuIncludingAliases) {
  for (const LaunchShape s : {cuda::kResidualShape, kOneWarpThreeBlocks}) {
    for (const size_t n : {size_t{1}, size_t{1000}}) {
      const std::string what = shape_name(s) + ", n " + std::to_string(n);
      const FVec a = random_floats(n, 4), b = random_floats(n, 5);
      FVec out(n), ref(n);
      cuda::impl::residual_forward(gpu, out.data(), a.data(), b.data(), n, s);
      cpu::residual_forward(ref.data(), a.data(), b.data(), n);
      expect_bits(out, ref, "forward, " + what);
      FVec inplace = a;  // out aliases a
      cuda::impl::residual_forward(gpu, inplace.data(), inplace.data(), b.data(), n, s);
      expect_bits(inplace, ref, "forward in place, " + what);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// row gather and scatter-add

TEST(CudaRows, GatherAndScatterAddMatchCpu) {
  for (const LaunchShape s : {cuda::kRowsShape, kOneWarpTwoBlocks}) {
    for (const int C : {1, 37, 300}) {
      const std::string what = shape_name(s) + ", C " + std::to_string(C);
      const int R = 11;
      const std::vector<int32_t> rows = {9, 0, 4, 10, 2, 7};  // distinct; 1, 3, 5, 6, 8 unused
      const int n = static_cast<int>(rows.size());
      const FVec inp = random_floats(static_cast<size_t>(R) * C, 9);
      FVec out(static_cast<size_t>(n) * C, NAN), ref(out.size(), 7.0f);
      cuda::impl::gather_rows(gpu, out.data(), inp.data(), rows.data(), n, C, s);
      cpu::gather_rows(ref.data(), inp.data(), rows.data(), n, C);
      expect_bits(out, ref, "gather, " + what);
      for (int i = 0; i < n; ++i) {
        ASSERT_EQ(out[static_cast<size_t>(i) * C], inp[static_cast<size_t>(rows[i]) * C]) << what;
      }
      const FVec dout = random_floats(out.size(), 10), d0 = random_floats(inp.size(), 11);
      FVec dinp = d0, rdinp = d0;
      cuda::impl::scatter_add_rows(gpu, dinp.data(), dout.data(), rows.data(), n, C, s);
      cpu::scatter_add_rows(rdinp.data(), dout.data(), rows.data(), n, C);
      expect_bits(dinp, rdinp, "scatter-add, " + what);
      for (const int unused : {1, 3, 5, 6, 8}) {
        for (int c = 0; c < C; ++c) {
          const size_t e = static_cast<size_t>(unused) * C + c;
          ASSERT_EQ(dinp[e], d0[e]) << "untouched row " << unused << ", " << what;
        }
      }
      for (int c = 0; c < C; ++c) {  // row 9 received dout row 0
        ASSERT_EQ(dinp[static_cast<size_t>(9) * C + c],
                  d0[static_cast<size_t>(9) * C + c] + dout[c]);
      }
    }
  }
  // A negative index gives a row of zeros, as on the CPU.
  const std::vector<int32_t> holes = {3, -1, 0, -2};
  const FVec src = random_floats(4 * 37, 12);
  FVec got(4 * 37, NAN), want(4 * 37, 7.0f);
  cuda::impl::gather_rows(gpu, got.data(), src.data(), holes.data(), 4, 37);
  cpu::gather_rows(want.data(), src.data(), holes.data(), 4, 37);
  expect_bits(got, want, "gather with negative rows");
  EXPECT_EQ(got[37], 0.0f);
  FVec nothing(4, 1.0f);  // n = 0 launches nothing
  cuda::impl::gather_rows(gpu, nothing.data(), nothing.data(), nullptr, 0, 4);
  cuda::impl::scatter_add_rows(gpu, nothing.data(), nothing.data(), nullptr, 0, 4);
  EXPECT_EQ(nothing, FVec(4, 1.0f));
}

// ---------------------------------------------------------------------------------------------
// dropout

TEST(CudaDropout, GroupBitsAreDropoutKeep) {
  const DropoutSpec d{0.37f, 0x0123456789abcdefull, 17, 5};
  for (const uint64_t first : {uint64_t{0}, (uint64_t{1} << 40) + 2}) {
    for (uint64_t i = first; i < first + 1000; ++i) {
      const Philox4 bits = dropout_group_bits(d, i / 4);
      ASSERT_EQ(dropout_keep_bits(d, bits.v[i % 4]), dropout_keep(d, i)) << "index " << i;
    }
  }
}

struct DropoutCase {
  int rows, cols;
  DropoutBlock blk;
};

DropoutBlock plain_block(int64_t row0, int64_t col0, int64_t global_cols) {
  DropoutBlock b;
  b.sample0 = row0;  // T = T_max = 1: row r is row row0 + r of the tensor
  b.col0 = col0;
  b.global_cols = global_cols;
  return b;
}

DropoutBlock sample_block(int64_t sample0, int T, int64_t T_max, int64_t col0,
                          int64_t global_cols) {
  DropoutBlock b;
  b.sample0 = sample0;
  b.T = T;
  b.T_max = T_max;
  b.col0 = col0;
  b.global_cols = global_cols;
  return b;
}

// Packed: rows 0, 1, 3, 6 and 7 of the layout (samples of 4 positions; some rows dropped).
const int32_t kPackedRows[] = {0, 1, 3, 6, 7};
DropoutBlock packed_block(DropoutBlock b) {
  b.rows = kPackedRows;
  return b;
}

TEST(CudaDropout, MasksAreTheCpuMasksBitForBit) {
  const DropoutSpec d{0.3f, 1234567, 42, 3};
  const DropoutCase cases[] = {
      {5, 37, plain_block(3, 6, 101)},  // a block inside a wider tensor, rows start unaligned
      {4, 64, plain_block(0, 0, 64)},   // the whole tensor, aligned rows
      {4, 6, plain_block(0, 2, 9)},     // rows starting at every offset within a Philox group
      {4, 7, plain_block(0, 2, 9)},     // (cols % 4 = 2 and 3: a row may touch 3 groups)
      {1, 1, plain_block(7, 9, 13)},    // one element
      {3, 10, plain_block((1ll << 33) + 1, 3, 11)},  // global indices above 2^32
      {12, 5, sample_block(2, 4, 7, 3, 10)},         // 3 samples of 4 positions, T_max 7
      {7, 9, sample_block(5, 1, 3, 0, 9)},           // 7 samples of 1 position, T_max 3
      {5, 6, packed_block(sample_block(2, 4, 7, 0, 6))},  // packed rows of a padded layout
  };
  for (const LaunchShape s : {cuda::kDropoutShape, kOneWarpTwoBlocks, kTwoWarpsOneBlock}) {
    for (const DropoutCase& c : cases) {
      const std::string what =
          shape_name(s) + ", " + std::to_string(c.rows) + "x" + std::to_string(c.cols);
      const size_t n = static_cast<size_t>(c.rows) * c.cols;
      const FVec x = random_floats(n, 7, 0.5f, 1.5f);  // never 0: a dropped element shows
      FVec out(n), ref(n);
      cuda::impl::dropout_forward(gpu, out.data(), x.data(), c.rows, c.cols, d, c.blk, s);
      cpu::dropout_forward(ref.data(), x.data(), c.rows, c.cols, d, c.blk);
      expect_bits(out, ref, "forward, " + what);
      FVec inplace = x;
      cuda::impl::dropout_forward(gpu, inplace.data(), inplace.data(), c.rows, c.cols, d, c.blk, s);
      expect_bits(inplace, ref, "forward in place, " + what);
      // Backward is the same masked product of dout (the .cu launcher calls the same driver).
      FVec dx(n), dref(n);
      cpu::dropout_backward(dref.data(), x.data(), c.rows, c.cols, d, c.blk);
      cuda::impl::dropout_forward(gpu, dx.data(), x.data(), c.rows, c.cols, d, c.blk, s);
      expect_bits(dx, dref, "backward, " + what);
    }
  }
}

TEST(CudaDropout, ZeroProbabilityCopies) {
  const DropoutSpec d{0.0f, 99, 1, 1};
  const int rows = 3, cols = 45;
  const FVec x = random_floats(rows * cols, 8);
  FVec out(x.size(), 0.0f);
  cuda::impl::dropout_forward(gpu, out.data(), x.data(), rows, cols, d, plain_block(0, 0, cols),
                              kOneWarpTwoBlocks);
  expect_bits(out, x, "copy");
  FVec inplace = x;
  cuda::impl::dropout_forward(gpu, inplace.data(), inplace.data(), rows, cols, d,
                              plain_block(0, 0, cols), kOneWarpTwoBlocks);
  expect_bits(inplace, x, "in place");
}

// A micro-batch of B samples padded to T < T_max positions draws, at position t of sample b,
// the bit the full-length call draws there.
TEST(CudaDropout, ShorterMicroBatchDrawsTheFullLengthBits) {
  const DropoutSpec d{0.5f, 77, 3, 2};
  const int B = 3, T_max = 7, cols = 10;
  const FVec x = random_floats(static_cast<size_t>(B) * T_max * cols, 12, 0.5f, 1.5f);
  FVec full(x.size());
  cuda::impl::dropout_forward(gpu, full.data(), x.data(), B * T_max, cols, d,
                              sample_block(4, T_max, T_max, 5, 20), kOneWarpTwoBlocks);
  for (const int T : {1, 3, 6}) {
    FVec in(static_cast<size_t>(B) * T * cols), out(in.size()), ref(in.size());
    for (int b = 0; b < B; ++b) {
      std::copy_n(x.begin() + static_cast<long>(b) * T_max * cols, T * cols,
                  in.begin() + static_cast<long>(b) * T * cols);
    }
    const DropoutBlock blk = sample_block(4, T, T_max, 5, 20);
    cuda::impl::dropout_forward(gpu, out.data(), in.data(), B * T, cols, d, blk, kOneWarpTwoBlocks);
    cpu::dropout_forward(ref.data(), in.data(), B * T, cols, d, blk);
    expect_bits(out, ref, "against the CPU, T " + std::to_string(T));
    for (int b = 0; b < B; ++b) {
      for (int e = 0; e < T * cols; ++e) {
        ASSERT_EQ(out[static_cast<size_t>(b) * T * cols + e],
                  full[static_cast<size_t>(b) * T_max * cols + e])
            << "T " << T << ", sample " << b << ", element " << e;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// embedding

struct EmbeddingCase {
  int B, T, C, vocab_start, V_local;
  std::vector<int32_t> tokens;  // B*T, some outside [vocab_start, vocab_start + V_local)
};

std::vector<EmbeddingCase> embedding_cases() {
  std::vector<EmbeddingCase> cases;
  cases.push_back({2, 3, 37, 4, 6, {4, 9, 3, 10, 6, 4}});
  cases.push_back({1, 1, 1, 0, 1, {0}});
  cases.push_back({2, 2, 5, 7, 1, {7, 6, 8, 7}});  // V_local = 1, C below a warp
  // Many positions, repeated tokens, and C spanning several 32-channel tiles.
  EmbeddingCase big{3, 25, 70, 2, 5, {}};
  std::mt19937 gen(11);
  std::uniform_int_distribution<int32_t> tok(0, 9);
  for (int i = 0; i < big.B * big.T; ++i) big.tokens.push_back(tok(gen));
  cases.push_back(big);
  return cases;
}

TEST(CudaEmbedding, ForwardMatchesCpuForLocalAndForeignTokens) {
  for (const LaunchShape s : {cuda::kEmbeddingForwardShape, kOneWarpTwoBlocks, kTwoWarpsOneBlock}) {
    for (const EmbeddingCase& c : embedding_cases()) {
      const std::string what = shape_name(s) + ", C " + std::to_string(c.C);
      const FVec wte = random_floats(static_cast<size_t>(c.V_local) * c.C, 12);
      const FVec pos = random_floats(static_cast<size_t>(c.T) * c.C, 13);
      const size_t n = static_cast<size_t>(c.B) * c.T * c.C;
      for (const float* p : {pos.data(), static_cast<const float*>(nullptr)}) {
        FVec out(n, -7.0f), ref(n, 7.0f);
        cuda::impl::embedding_forward(gpu, out.data(), c.tokens.data(), wte.data(), p, c.B, c.T,
                                      c.C, c.vocab_start, c.V_local, 0.5f, s);
        cpu::embedding_forward(ref.data(), c.tokens.data(), wte.data(), p, c.B, c.T, c.C,
                               c.vocab_start, c.V_local, 0.5f);
        expect_bits(out, ref, what + (p ? ", with positions" : ", without positions"));
      }
    }
  }
}

TEST(CudaEmbedding, BackwardAccumulatesInTheCpuOrder) {
  // {threads, max_blocks}: one vocabulary group; several; more blocks than rows (capped at
  // V_local); the production shape.
  const LaunchShape shapes[] = {{32, 1}, {32, 5}, {64, 64}, cuda::kEmbeddingBackwardShape};
  for (const LaunchShape s : shapes) {
    for (const EmbeddingCase& c : embedding_cases()) {
      const std::string what =
          shape_name(s) + ", C " + std::to_string(c.C) + ", B*T " + std::to_string(c.B * c.T);
      const size_t n = static_cast<size_t>(c.B) * c.T * c.C;
      const FVec dout = random_floats(n, 14);
      const FVec dwte0 = random_floats(static_cast<size_t>(c.V_local) * c.C, 15);
      const FVec dpos0 = random_floats(static_cast<size_t>(c.T) * c.C, 16);
      for (const bool with_pos : {true, false}) {
        FVec dwte = dwte0, dpos = dpos0, rwte = dwte0, rpos = dpos0;
        cuda::impl::embedding_backward(gpu, dwte.data(), with_pos ? dpos.data() : nullptr,
                                       dout.data(), c.tokens.data(), c.B, c.T, c.C, c.vocab_start,
                                       c.V_local, 0.5f, s, kOneWarpThreeBlocks);
        cpu::embedding_backward(rwte.data(), with_pos ? rpos.data() : nullptr, dout.data(),
                                c.tokens.data(), c.B, c.T, c.C, c.vocab_start, c.V_local, 0.5f);
        expect_bits(dwte, rwte, "dwte, " + what);
        expect_bits(dpos, rpos, "dpos, " + what);
      }
    }
  }
  // The production shape for the position pass too.
  const EmbeddingCase c = embedding_cases().back();
  const FVec dout = random_floats(static_cast<size_t>(c.B) * c.T * c.C, 17);
  FVec dwte(static_cast<size_t>(c.V_local) * c.C, 0.0f), dpos(static_cast<size_t>(c.T) * c.C);
  FVec rwte = dwte, rpos = dpos;
  cuda::impl::embedding_backward(gpu, dwte.data(), dpos.data(), dout.data(), c.tokens.data(), c.B,
                                 c.T, c.C, c.vocab_start, c.V_local, 1.0f);
  cpu::embedding_backward(rwte.data(), rpos.data(), dout.data(), c.tokens.data(), c.B, c.T, c.C,
                          c.vocab_start, c.V_local, 1.0f);
  expect_bits(dwte, rwte, "dwte, production shapes");
  expect_bits(dpos, rpos, "dpos, production shapes");
}

TEST(CudaEmbedding, BackwardGridSpreadsVocabularyGroups) {
  const dim3 g = cuda::impl::embedding_backward_wte_grid(768, 50304, cuda::kEmbeddingBackwardShape);
  EXPECT_EQ(g.x, 3u);   // 768 channels in tiles of 256
  EXPECT_EQ(g.y, 42u);  // 128 blocks / 3 tiles
  EXPECT_EQ(cuda::impl::embedding_backward_wte_grid(37, 5, {32, 64}).y, 5u);  // <= V_local
  EXPECT_EQ(cuda::impl::embedding_backward_wte_grid(4096, 9, {32, 64}).y, 1u);
}

TEST(CudaEmbedding, SinusoidalTableMatchesCpu) {
  for (const LaunchShape s : {cuda::kEmbeddingPosShape, kOneWarpThreeBlocks}) {
    const int T = 7, C = 9;
    FVec table(T * C), ref(T * C);
    cuda::impl::sinusoidal_table(gpu, table.data(), T, C, s);
    cpu::sinusoidal_table(ref.data(), T, C);
    expect_close(table, ref, 0.0, 1e-7, shape_name(s));
  }
}

// ---------------------------------------------------------------------------------------------
// layernorm

struct RowsCols {
  int N, C;
};
constexpr RowsCols kLayerNormSizes[] = {{1, 1}, {7, 37}, {5, 100}, {3, 768}, {70, 33}};

TEST(CudaLayerNorm, ForwardMatchesCpu) {
  EXPECT_EQ(cuda::impl::layernorm_row_blocks(7, kOneWarpTwoBlocks), 2u);  // rows loop
  for (const LaunchShape s : {cuda::kLayerNormRowShape, kOneWarpTwoBlocks, kTwoWarpsOneBlock}) {
    for (const RowsCols rc : kLayerNormSizes) {
      const auto [N, C] = rc;
      const std::string what =
          shape_name(s) + ", N " + std::to_string(N) + ", C " + std::to_string(C);
      const size_t n = static_cast<size_t>(N) * C;
      const FVec x = random_floats(n, 21, -2.0f, 3.0f);
      const FVec w = random_floats(C, 22, 0.5f, 1.5f), b = random_floats(C, 23);
      for (const float* bias : {b.data(), static_cast<const float*>(nullptr)}) {
        const float eps = bias ? 1e-5f : 1e-12f;
        FVec out(n), mean(N), rstd(N), rout(n), rmean(N), rrstd(N);
        cuda::impl::layernorm_forward(gpu, out.data(), mean.data(), rstd.data(), x.data(), w.data(),
                                      bias, N, C, eps, s);
        cpu::layernorm_forward(rout.data(), rmean.data(), rrstd.data(), x.data(), w.data(), bias, N,
                               C, eps);
        const std::string v = what + (bias ? ", bias, eps 1e-5" : ", no bias, eps 1e-12");
        expect_close(out, rout, 1e-5, 1e-5, "out, " + v);
        expect_close(mean, rmean, 1e-5, 1e-6, "mean, " + v);
        expect_close(rstd, rrstd, 1e-5, 0.0, "rstd, " + v);
      }
    }
  }
}

TEST(CudaLayerNorm, BackwardAccumulatesLikeCpu) {
  struct Shapes {
    LaunchShape rows, params;
  };
  const Shapes shapes[] = {{cuda::kLayerNormRowShape, cuda::kLayerNormParamShape},
                           {kOneWarpTwoBlocks, {32, 1}},
                           {kTwoWarpsOneBlock, {64, 2}},
                           {kOneWarpThreeBlocks, {96, 3}}};
  for (const Shapes& s : shapes) {
    for (const RowsCols rc : kLayerNormSizes) {
      const auto [N, C] = rc;
      const std::string what = shape_name(s.rows) + ", " + shape_name(s.params) + ", N " +
                               std::to_string(N) + ", C " + std::to_string(C);
      const size_t n = static_cast<size_t>(N) * C;
      const FVec x = random_floats(n, 31, -2.0f, 3.0f), dout = random_floats(n, 32);
      const FVec w = random_floats(C, 33, 0.5f, 1.5f), b = random_floats(C, 34);
      FVec out(n), mean(N), rstd(N);
      cpu::layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), b.data(), N,
                             C);
      const FVec dx0 = random_floats(n, 35), dw0 = random_floats(C, 36), db0 = random_floats(C, 37);
      for (const bool with_db : {true, false}) {
        FVec dx = dx0, dw = dw0, db = db0, rdx = dx0, rdw = dw0, rdb = db0;
        cuda::impl::layernorm_backward(gpu, dx.data(), dw.data(), with_db ? db.data() : nullptr,
                                       dout.data(), x.data(), w.data(), mean.data(), rstd.data(), N,
                                       C, s.rows, s.params);
        cpu::layernorm_backward(rdx.data(), rdw.data(), with_db ? rdb.data() : nullptr, dout.data(),
                                x.data(), w.data(), mean.data(), rstd.data(), N, C);
        const std::string v = what + (with_db ? ", db" : ", no db");
        expect_close(dx, rdx, 1e-5, 1e-5, "dinp, " + v);
        expect_close(dw, rdw, 1e-5, 1e-5, "dw, " + v);
        expect_close(db, rdb, 1e-5, 1e-5, "db, " + v);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// cross-entropy

constexpr int kIgnore = -100;

// Rows with: the first and last real column as target, an ignored row, targets outside [0, V)
// (a padded column and a negative one), and a row with -inf logits off the target.
struct CrossEntropyCase {
  int N, V, Vp;
  std::vector<int32_t> targets;
  FVec logits;
};

CrossEntropyCase crossentropy_case(int V, int Vp, uint32_t seed) {
  CrossEntropyCase c{8, V, Vp, {0, V - 1, kIgnore, 5, V, -3, 12 % V, 3}, {}};
  c.logits = random_floats(static_cast<size_t>(c.N) * Vp, seed, -4.0f, 4.0f);
  for (int j = 0; j < V; j += 3) c.logits[static_cast<size_t>(7) * Vp + j] = -INFINITY;
  return c;
}

TEST(CudaCrossEntropy, ForwardAndFusedMatchCpu) {
  const LaunchShape shapes[] = {cuda::kCrossEntropyRowShape, kOneWarpTwoBlocks, kTwoWarpsOneBlock};
  for (const float eps : {0.0f, 0.1f}) {
    for (const LaunchShape s : shapes) {
      for (const auto& [V, Vp] : {std::pair{37, 40}, std::pair{300, 300}, std::pair{13, 64}}) {
        const std::string what = shape_name(s) + ", V " + std::to_string(V) + ", Vp " +
                                 std::to_string(Vp) + ", smoothing " + std::to_string(eps);
        const CrossEntropyCase c = crossentropy_case(V, Vp, 41);
        FVec losses(c.N), ref(c.N);
        cuda::impl::crossentropy_forward(gpu, losses.data(), c.logits.data(), c.targets.data(), c.N,
                                         V, Vp, kIgnore, eps, s);
        cpu::crossentropy_forward(ref.data(), c.logits.data(), c.targets.data(), c.N, V, Vp,
                                  kIgnore, eps);
        expect_close(losses, ref, 1e-5, 1e-6, "forward losses, " + what);

        const float dloss = 1.0f / 5.0f;
        FVec d = c.logits, rd = c.logits;
        cuda::impl::crossentropy_fused(gpu, d.data(), losses.data(), c.targets.data(), c.N, V, Vp,
                                       kIgnore, eps, dloss, s);
        cpu::crossentropy_fused(rd.data(), ref.data(), c.targets.data(), c.N, V, Vp, kIgnore, eps,
                                dloss);
        expect_close(losses, ref, 1e-5, 1e-6, "fused losses, " + what);
        expect_close(d, rd, 1e-5, 1e-7, "fused dlogits, " + what);
        EXPECT_EQ(losses[2], 0.0f) << "ignored row, " << what;
        EXPECT_TRUE(std::isnan(losses[4]) && std::isnan(losses[5])) << "invalid targets, " << what;
      }
    }
  }
}

// Vocab-parallel over tp ranks, each phase against the CPU phase, the reductions between phases
// done here, and the whole against the single-rank fused loss.
void check_vocab_parallel(int V, int Vp, int tp, float eps, const LaunchShape& s) {
  const std::string what = shape_name(s) + ", V " + std::to_string(V) + ", Vp " +
                           std::to_string(Vp) + ", tp " + std::to_string(tp) + ", smoothing " +
                           std::to_string(eps);
  const CrossEntropyCase c = crossentropy_case(V, Vp, 51);
  const int N = c.N, Vl = Vp / tp;
  auto slice = [&](int r) {
    FVec x(static_cast<size_t>(N) * Vl);
    for (int n = 0; n < N; ++n) {
      for (int j = 0; j < Vl; ++j) {
        x[static_cast<size_t>(n) * Vl + j] = c.logits[static_cast<size_t>(n) * Vp + r * Vl + j];
      }
    }
    return x;
  };
  FVec row_max(N, -INFINITY);
  for (int r = 0; r < tp; ++r) {
    const FVec x = slice(r);
    FVec m(N), rm(N);
    cuda::impl::vp_crossentropy_max(gpu, m.data(), x.data(), N, Vl, r * Vl, V, s);
    cpu::vp_crossentropy_max(rm.data(), x.data(), N, Vl, r * Vl, V);
    expect_bits(m, rm, "max, rank " + std::to_string(r) + ", " + what);
    for (int n = 0; n < N; ++n) row_max[n] = std::max(row_max[n], m[n]);
  }
  // Without smoothing phase 2 computes no sum of the logits (null), as the callers ask.
  const bool smoothed = eps > 0.0f;
  FVec sum_exp(N, 0.0f), target_logit(N, 0.0f), sum_logits(N, 0.0f);
  for (int r = 0; r < tp; ++r) {
    const FVec x = slice(r);
    FVec se(N), tl(N), sl(N, 0.0f), rse(N), rtl(N), rsl(N, 0.0f);
    cuda::impl::vp_crossentropy_sums(gpu, se.data(), tl.data(), smoothed ? sl.data() : nullptr,
                                     x.data(), row_max.data(), c.targets.data(), N, Vl, r * Vl, V,
                                     kIgnore, s);
    cpu::vp_crossentropy_sums(rse.data(), rtl.data(), smoothed ? rsl.data() : nullptr, x.data(),
                              row_max.data(), c.targets.data(), N, Vl, r * Vl, V, kIgnore);
    expect_close(se, rse, 1e-5, 0.0, "sum_exp, rank " + std::to_string(r) + ", " + what);
    expect_bits(tl, rtl, "target_logit, rank " + std::to_string(r) + ", " + what);
    expect_close(sl, rsl, 1e-5, 1e-5, "sum_logits, rank " + std::to_string(r) + ", " + what);
    for (int n = 0; n < N; ++n) {
      sum_exp[n] += se[n];
      target_logit[n] += tl[n];
      sum_logits[n] += sl[n];
    }
  }
  const float* sums_of_logits = smoothed ? sum_logits.data() : nullptr;
  const float dloss = 0.25f;
  FVec full_d = c.logits, full_losses(N);
  cpu::crossentropy_fused(full_d.data(), full_losses.data(), c.targets.data(), N, V, Vp, kIgnore,
                          eps, dloss);
  for (int r = 0; r < tp; ++r) {
    const std::string rank = "rank " + std::to_string(r) + ", " + what;
    const FVec x = slice(r);
    FVec losses(N), rlosses(N), d(x.size()), rd(x.size());
    cuda::impl::vp_crossentropy_finish(gpu, losses.data(), d.data(), x.data(), row_max.data(),
                                       sum_exp.data(), target_logit.data(), sums_of_logits,
                                       c.targets.data(), N, Vl, r * Vl, V, kIgnore, eps, dloss, s,
                                       kOneWarpTwoBlocks);
    cpu::vp_crossentropy_finish(rlosses.data(), rd.data(), x.data(), row_max.data(), sum_exp.data(),
                                target_logit.data(), sums_of_logits, c.targets.data(), N, Vl,
                                r * Vl, V, kIgnore, eps, dloss);
    expect_close(losses, rlosses, 1e-6, 1e-6, "finish losses, " + rank);
    expect_close(d, rd, 1e-5, 1e-7, "finish dlogits, " + rank);
    expect_close(losses, full_losses, 1e-5, 1e-5, "losses against the fused loss, " + rank);
    FVec full_slice(x.size());
    for (int n = 0; n < N; ++n) {
      for (int j = 0; j < Vl; ++j) {
        full_slice[static_cast<size_t>(n) * Vl + j] =
            full_d[static_cast<size_t>(n) * Vp + r * Vl + j];
      }
    }
    expect_close(d, full_slice, 1e-5, 1e-7, "dlogits against the fused gradient, " + rank);

    FVec aliased = x;  // dlogits over the logits
    cuda::impl::vp_crossentropy_finish(gpu, losses.data(), aliased.data(), aliased.data(),
                                       row_max.data(), sum_exp.data(), target_logit.data(),
                                       sums_of_logits, c.targets.data(), N, Vl, r * Vl, V, kIgnore,
                                       eps, dloss, s, kOneWarpTwoBlocks);
    expect_bits(aliased, d, "dlogits in place, " + rank);
    FVec only(N, 9.0f);  // no dlogits: the thread-per-row loss kernel
    cuda::impl::vp_crossentropy_finish(gpu, only.data(), static_cast<float*>(nullptr), x.data(),
                                       row_max.data(), sum_exp.data(), target_logit.data(),
                                       sums_of_logits, c.targets.data(), N, Vl, r * Vl, V, kIgnore,
                                       eps, dloss, s, kOneWarpTwoBlocks);
    expect_bits(only, losses, "losses without dlogits, " + rank);
  }
}

TEST(CudaCrossEntropy, VocabParallelPhasesMatchCpuAndTheFusedLoss) {
  for (const float eps : {0.0f, 0.1f}) {
    for (const LaunchShape s : {cuda::kCrossEntropyRowShape, kOneWarpTwoBlocks}) {
      check_vocab_parallel(37, 42, 3, eps, s);  // last rank: 9 real and 5 padded columns
      check_vocab_parallel(30, 48, 3, eps, s);  // last rank holds padding only: its max is -inf
      check_vocab_parallel(37, 40, 1, eps, s);  // one rank
    }
    check_vocab_parallel(37, 40, 2, eps, kOneWarpTwoBlocks);  // two ranks
  }
}

// ---------------------------------------------------------------------------------------------
// optimizer

TEST(CudaOptimizer, AdamWMatchesCpu) {
  const AdamWParams a{1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f - 0.9f * 0.9f, 1.0f - 0.95f * 0.95f,
                      0.5f};
  for (const LaunchShape s : {cuda::kAdamWShape, kOneWarpThreeBlocks}) {
    for (const size_t n : {size_t{1}, size_t{1000}}) {
      const std::string what = shape_name(s) + ", n " + std::to_string(n);
      const FVec p0 = random_floats(n, 61), g = random_floats(n, 62);
      const FVec m0 = random_floats(n, 63, -0.1f, 0.1f), v0 = random_floats(n, 64, 0.0f, 0.01f);
      FVec p = p0, m = m0, v = v0, rp = p0, rm = m0, rv = v0;
      cuda::impl::adamw_update(gpu, p.data(), g.data(), m.data(), v.data(), n, a, s);
      cpu::adamw_update(rp.data(), g.data(), rm.data(), rv.data(), n, a);
      expect_close(p, rp, 1e-6, 1e-8, "params, " + what);
      expect_close(m, rm, 1e-6, 1e-9, "m, " + what);
      expect_close(v, rv, 1e-6, 1e-12, "v, " + what);
    }
  }
}

TEST(CudaOptimizer, SumSquaresIsDeterministicAndMatchesCpu) {
  EXPECT_EQ(cuda::impl::sum_squares_blocks(0), 0u);
  EXPECT_EQ(cuda::impl::sum_squares_blocks(size_t{1} << 40), 1024u);  // bounded scratch
  const LaunchShape shapes[] = {cuda::kSumSquaresShape, {32, 4}, {64, 1}};
  for (const LaunchShape s : shapes) {
    for (const size_t n : {size_t{0}, size_t{1}, size_t{31}, size_t{1000}, size_t{20000}}) {
      const std::string what = shape_name(s) + ", n " + std::to_string(n);
      const FVec x = random_floats(n, 71, -3.0f, 3.0f);
      std::vector<double> scratch(cuda::impl::sum_squares_blocks(n, s), -1.0);
      double result = -1.0, again = -2.0;
      cuda::impl::sum_squares(gpu, &result, x.data(), n, scratch.data(), s);
      cuda::impl::sum_squares(gpu, &again, x.data(), n, scratch.data(), s);
      const double ref = cpu::sum_squares(x.data(), n);
      EXPECT_NEAR(result, ref, 1e-12 * ref) << what;
      EXPECT_EQ(std::memcmp(&result, &again, sizeof(double)), 0) << "rerun differs, " << what;
    }
  }
}

TEST(CudaOptimizer, AllFiniteFindsInfAndNan) {
  for (const LaunchShape s : {cuda::kAllFiniteShape, kOneWarpThreeBlocks}) {
    for (const size_t n : {size_t{0}, size_t{1}, size_t{1000}}) {
      FVec x = random_floats(n, 81, -1e30f, 1e30f);
      if (n > 0) x[0] = std::numeric_limits<float>::denorm_min();
      int flag = -1;
      cuda::impl::all_finite(gpu, &flag, x.data(), n, s);
      EXPECT_EQ(flag, 1) << shape_name(s) << ", n " << n;
      for (const float bad : {std::numeric_limits<float>::quiet_NaN(), INFINITY, -INFINITY}) {
        for (size_t at : {size_t{0}, n / 2, n - 1}) {
          if (n == 0) continue;
          FVec y = x;
          y[at] = bad;
          flag = -1;
          cuda::impl::all_finite(gpu, &flag, y.data(), n, s);
          EXPECT_EQ(flag, 0) << shape_name(s) << ", n " << n << ", " << bad << " at " << at;
          EXPECT_EQ(flag, cpu::all_finite(y.data(), n) ? 1 : 0);
        }
      }
    }
  }
}

}  // namespace
}  // namespace ph
