// The bias kernels of the CUDA linear layer (kernels/cuda/matmul_kernels.cuh) and the whole
// sequence matmul.cu runs (impl::matmul_forward / backward), against the CPU backend's matmul.
// The kernels run on the host through tests/cuda_shim.h, with their production launch shapes
// and with small blocks and capped grids so that every grid-stride loop takes several turns;
// the cuBLAS plans run through the reference of cuBLAS's semantics (tests/cuda_gemm_reference.h).
//
// Exactness: the CPU backend adds the bias inside its sgemm (beta = 1 on rows holding the bias)
// and sums the dbias rows in order; the kernels add the bias to the finished product and sum
// the rows warp by warp. On dyadic data (multiples of 1/8 in [-4, 4]) every product and sum of
// these small shapes is exact in float, so every order gives the same values and the results
// must be equal: a column read twice, missed or misaligned cannot hide in a tolerance. On
// uniform random data they agree to rounding.
#include "tests/cuda_shim.h"  // first: the kernel headers compile against it

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/cpu/matmul.h"
#include "kernels/cuda/matmul_kernels.cuh"
#include "tests/compare_floats.h"
#include "tests/cuda_gemm_reference.h"

#include "tests/random_data.h"

namespace ph {
namespace {

using cuda::LaunchShape;
using testing::expect_close;
using testing::FVec;
using testing::random_floats;
using testing::ReferenceGemm;

const shim::Launcher gpu;

// (N, OC): one row and one column; N and OC below, across and not multiples of a warp and of the
// blocks; more rows than the production block has warps (so that a warp sums several rows);
// more column tiles (10) than the small shapes have blocks.
struct RowsCols {
  int N, OC;
};
constexpr RowsCols kSizes[] = {{1, 1}, {1, 37}, {5, 1}, {7, 33}, {45, 70}, {70, 300}};

enum class Data { Dyadic, Uniform };

// Multiples of 1/8 in [-4, 4], never -0.
FVec dyadic(size_t n, uint32_t seed) {
  FVec v = random_floats(n, seed, -4.0f, 4.0f);
  for (float& x : v) x = std::round(x * 8.0f) / 8.0f + 0.0f;
  return v;
}

FVec data(Data kind, size_t n, uint32_t seed) {
  return kind == Data::Dyadic ? dyadic(n, seed) : random_floats(n, seed);
}

// Exact on dyadic data; on uniform data, rounding of sums of up to 70 terms of magnitude < 1.
void expect_matches(Data kind, const FVec& got, const FVec& ref, const std::string& what) {
  if (kind == Data::Dyadic) {
    expect_close(got, ref, 0.0, 0.0, what + ", dyadic data");
  } else {
    expect_close(got, ref, 1e-5, 1e-5, what + ", uniform data");
  }
}

std::string case_name(const LaunchShape& s, const RowsCols& size) {
  return "shape {" + std::to_string(s.threads) + ", " + std::to_string(s.max_blocks) + "}, N " +
         std::to_string(size.N) + ", OC " + std::to_string(size.OC);
}

constexpr int kIC = 5;  // inner dimension of the products around the bias

// ---------------------------------------------------------------------------------------------
// the bias kernels

TEST(CudaMatmulBias, AddBiasMatchesCpuMatmul) {
  // Production: a 256-thread block per row; one warp over two blocks; two warps in one block.
  for (const LaunchShape s : {cuda::kBiasAddShape, LaunchShape{32, 2}, LaunchShape{64, 1}}) {
    for (const RowsCols size : kSizes) {
      for (const Data kind : {Data::Dyadic, Data::Uniform}) {
        const auto [N, OC] = size;
        const FVec inp = data(kind, static_cast<size_t>(N) * kIC, 1);
        const FVec w = data(kind, static_cast<size_t>(OC) * kIC, 2);
        const FVec bias = data(kind, static_cast<size_t>(OC), 3);
        FVec ref(static_cast<size_t>(N) * OC), out(ref.size());
        cpu::matmul_forward(ref.data(), inp.data(), w.data(), bias.data(), N, kIC, OC);
        cpu::matmul_forward(out.data(), inp.data(), w.data(), nullptr, N, kIC, OC);
        cuda::impl::add_bias(gpu, out.data(), bias.data(), N, OC, s);
        expect_matches(kind, out, ref, "out, " + case_name(s, size));
      }
    }
  }
}

TEST(CudaMatmulBias, ColumnSumAccumulatesLikeCpu) {
  // Production: 32 warps per block, a block per 32 columns. Small: one warp doing every tile;
  // two warps over three blocks; three warps over two blocks.
  const LaunchShape shapes[] = {cuda::kBiasSumShape, {32, 1}, {64, 3}, {96, 2}};
  for (const LaunchShape s : shapes) {
    for (const RowsCols size : kSizes) {
      for (const Data kind : {Data::Dyadic, Data::Uniform}) {
        const auto [N, OC] = size;
        const FVec dout = data(kind, static_cast<size_t>(N) * OC, 4);
        const FVec inp = data(kind, static_cast<size_t>(N), 5);  // IC = 1: dw is a by-product
        const FVec w = data(kind, static_cast<size_t>(OC), 6);
        const FVec dbias0 = data(kind, static_cast<size_t>(OC), 7);  // += into nonzero values
        FVec ref = dbias0, dw(static_cast<size_t>(OC), 0.0f);
        cpu::matmul_backward(nullptr, dw.data(), ref.data(), dout.data(), inp.data(), w.data(), N,
                             1, OC);
        FVec dbias = dbias0;
        cuda::impl::bias_column_sum(gpu, dbias.data(), dout.data(), N, OC, s);
        expect_matches(kind, dbias, ref, "dbias, " + case_name(s, size));
      }
    }
  }
}

TEST(CudaMatmulBias, ColumnSumGridHasABlockPerTileUpToTheCap) {
  EXPECT_EQ(cuda::impl::bias_sum_blocks(1, cuda::kBiasSumShape), 1u);
  EXPECT_EQ(cuda::impl::bias_sum_blocks(32, cuda::kBiasSumShape), 1u);
  EXPECT_EQ(cuda::impl::bias_sum_blocks(33, cuda::kBiasSumShape), 2u);
  EXPECT_EQ(cuda::impl::bias_sum_blocks(50304, cuda::kBiasSumShape), 1572u);
  EXPECT_EQ(cuda::impl::bias_sum_blocks(300, LaunchShape{64, 3}), 3u);  // tiles loop
}

// ---------------------------------------------------------------------------------------------
// the whole op: GEMM plans and bias kernels in the order matmul.cu issues them

TEST(CudaMatmul, ForwardAndBackwardMatchCpu) {
  const RowsCols sizes[] = {{1, 1}, {7, 33}, {70, 300}};
  const int IC = 19;
  for (const RowsCols size : sizes) {
    const auto [N, OC] = size;
    const std::string what = "N " + std::to_string(N) + ", OC " + std::to_string(OC);
    FVec inp = random_floats(static_cast<size_t>(N) * IC, 11);
    FVec w = random_floats(static_cast<size_t>(OC) * IC, 12);
    FVec bias = random_floats(static_cast<size_t>(OC), 13);
    FVec dout = random_floats(static_cast<size_t>(N) * OC, 14);
    const FVec dinp0 = random_floats(inp.size(), 15), dw0 = random_floats(w.size(), 16);
    const FVec dbias0 = random_floats(bias.size(), 17);
    for (const bool with_bias : {true, false}) {
      const std::string v = what + (with_bias ? ", bias" : ", no bias");
      FVec out(static_cast<size_t>(N) * OC, NAN), ref(out.size());  // beta 0: out is not read
      FVec dinp = dinp0, dw = dw0, dbias = dbias0, rdinp = dinp0, rdw = dw0, rdbias = dbias0;
      const ReferenceGemm gemm({&inp, &w, &dout, &out, &dinp, &dw});
      cuda::impl::matmul_forward(gemm, gpu, out.data(), inp.data(), w.data(),
                                 with_bias ? bias.data() : nullptr, N, IC, OC);
      cpu::matmul_forward(ref.data(), inp.data(), w.data(), with_bias ? bias.data() : nullptr, N,
                          IC, OC);
      expect_close(out, ref, 1e-5, 1e-5, "forward, " + v);
      // Without a bias there is no dbias, and dinp is left out too (the first layer's input).
      cuda::impl::matmul_backward(gemm, gpu, with_bias ? dinp.data() : nullptr, dw.data(),
                                  with_bias ? dbias.data() : nullptr, dout.data(), inp.data(),
                                  w.data(), N, IC, OC);
      cpu::matmul_backward(with_bias ? rdinp.data() : nullptr, rdw.data(),
                           with_bias ? rdbias.data() : nullptr, dout.data(), inp.data(), w.data(),
                           N, IC, OC);
      expect_close(dinp, rdinp, 1e-5, 1e-5, "dinp, " + v);
      expect_close(dw, rdw, 1e-5, 1e-5, "dw, " + v);
      expect_close(dbias, rdbias, 1e-5, 1e-5, "dbias, " + v);
    }
  }
}

}  // namespace
}  // namespace ph
