// bfloat16 rounding (kernels/common/bf16.h) against an independent arithmetic reference, and the
// CPU backend's linear layer in bf16 mode (GemmPrecision::Bf16) against double-precision
// products of the rounded operands.
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <bit>
#include <cfenv>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/common/bf16.h"
#include "kernels/cpu/matmul.h"
#include "tests/random_data.h"

namespace ph {
namespace {

using testing::FVec;
using testing::random_floats;

uint32_t bits(float x) {
  return std::bit_cast<uint32_t>(x);
}
float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}

// ---------------------------------------------------------------------------------------------
// rounding

// The bfloat16 nearest to a finite or infinite x, by arithmetic on its value rather than on its
// bits: a bfloat16 has 8 significant bits and the exponent range of a float, so the values
// near x with 2^(e-1) <= |x| < 2^e are the multiples of 2^(e-8), and no spacing is finer than
// that of the subnormals, 2^-133. x / spacing is exact in long double; nearbyint rounds it to
// the nearest integer, ties to even (the default rounding mode, checked by the tests), and an
// even multiple is a bfloat16 with an even last bit. A result of 2^128 or more is Inf.
float reference_round(float x) {
  if (std::isinf(x) || x == 0.0f) return x;
  int e = 0;
  std::frexp(x, &e);
  const int q = std::max(e - 8, -133);
  const long double v = std::ldexp(std::nearbyint(std::ldexp(static_cast<long double>(x), -q)), q);
  if (std::fabs(v) >= std::ldexp(1.0L, 128)) return std::copysign(INFINITY, x);
  return static_cast<float>(v);
}

// Value of the bfloat16 with bits b, from its fields.
double reference_value(uint16_t b) {
  const int sign = b >> 15, exponent = (b >> 7) & 0xff, mantissa = b & 0x7f;
  double v = 0.0;
  if (exponent == 0xff) {
    v = mantissa ? NAN : INFINITY;
  } else if (exponent == 0) {
    v = std::ldexp(mantissa, -133);
  } else {
    v = std::ldexp(128 + mantissa, exponent - 134);
  }
  return sign ? -v : v;
}

// round_bf16 and bf16_bits agree with the reference on x, bit for bit (the sign of zero too);
// a NaN gives a quiet NaN with the sign and upper payload bits of x.
void expect_rounds_like_reference(float x) {
  const uint16_t b = bf16_bits(x);
  const float r = round_bf16(x);
  ASSERT_EQ(bits(r), static_cast<uint32_t>(b) << 16) << std::hexfloat << x;
  if (std::isnan(x)) {
    ASSERT_TRUE(std::isnan(r)) << std::hex << bits(x);
    ASSERT_EQ(b, (bits(x) >> 16) | 0x0040u) << std::hex << bits(x);
    return;
  }
  ASSERT_EQ(bits(r), bits(reference_round(x))) << std::hexfloat << x << " -> " << r;
}

TEST(Bf16Rounding, ReferenceAssumesRoundToNearestEven) {
  ASSERT_EQ(std::fegetround(), FE_TONEAREST);
  EXPECT_EQ(std::nearbyint(2.5L), 2.0L);
  EXPECT_EQ(std::nearbyint(3.5L), 4.0L);
}

// Every bfloat16 (all upper halves of a float) with the lower halves that decide the rounding:
// zero, the smallest, just below, at and just above one half, the largest; plus random ones.
TEST(Bf16Rounding, EveryUpperHalfWithTheDecisiveLowerHalves) {
  std::vector<uint32_t> lows = {0x0000, 0x0001, 0x3fff, 0x7ffe, 0x7fff,
                                0x8000, 0x8001, 0x8002, 0xc000, 0xffff};
  std::mt19937 gen(1);
  for (int i = 0; i < 6; ++i) lows.push_back(gen() & 0xffffu);
  for (uint32_t hi = 0; hi <= 0xffff; ++hi) {
    for (const uint32_t lo : lows) expect_rounds_like_reference(from_bits(hi << 16 | lo));
  }
}

TEST(Bf16Rounding, RandomFloats) {
  std::mt19937 gen(2);
  for (int i = 0; i < (1 << 21); ++i) {
    expect_rounds_like_reference(from_bits(static_cast<uint32_t>(gen())));
  }
}

TEST(Bf16Rounding, NamedCases) {
  const float ulp1 = std::ldexp(1.0f, -7);  // spacing of bfloat16 values in [1, 2)
  // Ties go to the even neighbour: 1 + ulp/2 down to 1, 1 + 3 ulp/2 up to 1 + 2 ulp.
  EXPECT_EQ(round_bf16(1.0f + ulp1 / 2), 1.0f);
  EXPECT_EQ(round_bf16(1.0f + 1.5f * ulp1), 1.0f + 2 * ulp1);
  EXPECT_EQ(round_bf16(-(1.0f + 1.5f * ulp1)), -(1.0f + 2 * ulp1));
  // Just off the tie, the nearer neighbour.
  EXPECT_EQ(round_bf16(std::nextafter(1.0f + ulp1 / 2, 2.0f)), 1.0f + ulp1);
  EXPECT_EQ(round_bf16(std::nextafter(1.0f + 1.5f * ulp1, 0.0f)), 1.0f + ulp1);
  // A carry into the exponent: the largest value below 2 that rounds up gives 2.
  EXPECT_EQ(round_bf16(std::nextafter(2.0f, 0.0f)), 2.0f);
  // The top of the range: 0x1.fep127 is the largest bfloat16; from the midpoint 0x1.ffp127 up
  // (a tie whose even neighbour is 2^128) the nearest is Inf, below it the largest finite.
  const float max_bf16 = from_bits(0x7f7f0000u);
  EXPECT_EQ(round_bf16(std::numeric_limits<float>::max()), INFINITY);
  EXPECT_EQ(round_bf16(-std::numeric_limits<float>::max()), -INFINITY);
  EXPECT_EQ(round_bf16(from_bits(0x7f7f8000u)), INFINITY);
  EXPECT_EQ(round_bf16(from_bits(0x7f7f7fffu)), max_bf16);
  EXPECT_EQ(round_bf16(max_bf16), max_bf16);
  // Subnormals: the smallest bfloat16 is 2^-133; half of it is a tie to 0 (even), one and a half
  // of it a tie to 2^-132; the largest float subnormal rounds up to the smallest normal.
  EXPECT_EQ(bits(round_bf16(std::ldexp(1.0f, -149))), 0u);
  EXPECT_EQ(bits(round_bf16(std::ldexp(1.0f, -134))), 0u);
  EXPECT_EQ(round_bf16(std::ldexp(1.0f, -133)), std::ldexp(1.0f, -133));
  EXPECT_EQ(round_bf16(std::ldexp(3.0f, -134)), std::ldexp(1.0f, -132));
  EXPECT_EQ(round_bf16(std::ldexp(5.0f, -134)), std::ldexp(1.0f, -132));
  EXPECT_EQ(round_bf16(from_bits(0x007fffffu)), std::ldexp(1.0f, -126));
  EXPECT_EQ(bits(round_bf16(-std::ldexp(1.0f, -140))), 0x80000000u);  // -0
  // Zeros and infinities keep their sign.
  EXPECT_EQ(bf16_bits(0.0f), 0x0000u);
  EXPECT_EQ(bf16_bits(-0.0f), 0x8000u);
  EXPECT_EQ(bf16_bits(INFINITY), 0x7f80u);
  EXPECT_EQ(bf16_bits(-INFINITY), 0xff80u);
  // NaN stays NaN, quiet, with its sign, even when its payload is only in the dropped bits
  // (truncation would make it Inf).
  EXPECT_EQ(bf16_bits(from_bits(0x7f800001u)), 0x7fc0u);
  EXPECT_EQ(bf16_bits(from_bits(0xff800001u)), 0xffc0u);
  EXPECT_EQ(bf16_bits(from_bits(0x7fa50000u)), 0x7fe5u);
  EXPECT_EQ(bf16_bits(std::numeric_limits<float>::quiet_NaN()), 0x7fc0u);
}

TEST(Bf16Rounding, EveryBf16ConvertsExactlyAndRoundsToItself) {
  for (uint32_t b = 0; b <= 0xffff; ++b) {
    const auto h = static_cast<uint16_t>(b);
    const float x = bf16_to_float(h);
    const double ref = reference_value(h);
    if (std::isnan(ref)) {
      ASSERT_TRUE(std::isnan(x)) << std::hex << b;
      ASSERT_EQ(bf16_bits(x), h | 0x0040u) << std::hex << b;
      continue;
    }
    ASSERT_EQ(static_cast<double>(x), ref) << std::hex << b;
    ASSERT_EQ(std::signbit(x), (b & 0x8000u) != 0) << std::hex << b;
    ASSERT_EQ(bf16_bits(x), h) << std::hex << b;
  }
}

// ---------------------------------------------------------------------------------------------
// the linear layer in bf16 mode

FVec rounded(const FVec& v) {
  FVec r(v.size());
  std::transform(v.begin(), v.end(), r.begin(), round_bf16);
  return r;
}

// max |got - ref| / max |ref|: the error of a whole result, as sums of products are judged.
double normwise_error(const FVec& got, const std::vector<double>& ref) {
  EXPECT_EQ(got.size(), ref.size());
  const auto abs_max = [](double m, double x) { return std::max(m, std::fabs(x)); };
  std::vector<double> diff(ref.size());
  std::transform(got.begin(), got.end(), ref.begin(), diff.begin(), std::minus<double>());
  return std::accumulate(diff.begin(), diff.end(), 0.0, abs_max) /
         std::accumulate(ref.begin(), ref.end(), 0.0, abs_max);
}

// The layer's data and its products in double: out = inp w^T (+ bias), dinp = dinp0 + dout w,
// dw = dw0 + dout^T inp, dbias = dbias0 + column sums of dout, computed on the operands given.
struct Layer {
  int N, IC, OC;
  FVec inp, w, bias, dout, dinp0, dw0, dbias0;

  Layer(int n, int ic, int oc)
      : N(n),
        IC(ic),
        OC(oc),
        inp(random_floats(static_cast<size_t>(n) * ic, 11)),
        w(random_floats(static_cast<size_t>(oc) * ic, 12)),
        bias(random_floats(static_cast<size_t>(oc), 13)),
        dout(random_floats(static_cast<size_t>(n) * oc, 14)),
        dinp0(random_floats(inp.size(), 15)),
        dw0(random_floats(w.size(), 16)),
        dbias0(random_floats(bias.size(), 17)) {}

  // Flat indices of element (n, o, i) in the [N, IC], [OC, IC] and [N, OC] tensors.
  struct At {
    size_t ni, oi, no;
  };
  // f(at) for every (n, o, i): each product of the layer's three GEMMs once.
  template <typename F>
  void each_product(F f) const {
    for (int n = 0; n < N; ++n) {
      for (int o = 0; o < OC; ++o) {
        for (int i = 0; i < IC; ++i) {
          f(At{static_cast<size_t>(n) * IC + i, static_cast<size_t>(o) * IC + i,
               static_cast<size_t>(n) * OC + o});
        }
      }
    }
  }

  std::vector<double> out(const FVec& x, const FVec& wt, const FVec& b) const {
    std::vector<double> r(static_cast<size_t>(N) * OC);
    each_product([&](At a) { r[a.no] += static_cast<double>(x[a.ni]) * wt[a.oi]; });
    if (!b.empty()) {
      for (size_t k = 0; k < r.size(); ++k) r[k] += b[k % static_cast<size_t>(OC)];
    }
    return r;
  }
  std::vector<double> dinp(const FVec& d, const FVec& wt) const {
    std::vector<double> r(dinp0.begin(), dinp0.end());
    each_product([&](At a) { r[a.ni] += static_cast<double>(d[a.no]) * wt[a.oi]; });
    return r;
  }
  std::vector<double> dw(const FVec& d, const FVec& x) const {
    std::vector<double> r(dw0.begin(), dw0.end());
    each_product([&](At a) { r[a.oi] += static_cast<double>(d[a.no]) * x[a.ni]; });
    return r;
  }
  std::vector<double> dbias() const {
    std::vector<double> r(dbias0.begin(), dbias0.end());
    for (size_t k = 0; k < dout.size(); ++k) r[k % static_cast<size_t>(OC)] += dout[k];
    return r;
  }
};

// Results of one backend's matmul_forward and matmul_backward on a layer.
struct Results {
  FVec out, dinp, dw, dbias;
};

// Reserves the backend's scratch for the layer first, as a model does when it is built.
Results run_layer(Backend& be, const Layer& L, const FVec& bias) {
  be.reserve_linear(L.N, L.IC, L.OC);
  Results r{FVec(static_cast<size_t>(L.N) * L.OC, NAN), L.dinp0, L.dw0, L.dbias0};
  be.matmul_forward(r.out.data(), L.inp.data(), L.w.data(), bias.empty() ? nullptr : bias.data(),
                    L.N, L.IC, L.OC);
  be.matmul_backward(r.dinp.data(), r.dw.data(), r.dbias.data(), L.dout.data(), L.inp.data(),
                     L.w.data(), L.N, L.IC, L.OC);
  return r;
}

// Both products of float values summed in fp32 over at most a few hundred terms: relative
// to the result's scale, within a few 1e-7. Rounding the operands to bfloat16 (relative error up
// to 2^-9 each) moves the results by ~1e-3: 100 times the tolerance.
constexpr double kTol = 1e-5;

TEST(MatmulBf16, BackendReportsItsPrecision) {
  EXPECT_EQ(make_cpu_backend()->gemm_precision(), GemmPrecision::Fp32);
  EXPECT_EQ(make_cpu_backend(GemmPrecision::Fp32)->gemm_precision(), GemmPrecision::Fp32);
  EXPECT_EQ(make_cpu_backend(GemmPrecision::Bf16)->gemm_precision(), GemmPrecision::Bf16);
}

class MatmulBf16Shapes : public ::testing::TestWithParam<std::vector<int>> {};

// Odd small shapes, and shapes across the row blocks (256) and dw tiles of kernels/cpu/matmul.
INSTANTIATE_TEST_SUITE_P(Shapes, MatmulBf16Shapes,
                         ::testing::Values(std::vector<int>{9, 7, 11}, std::vector<int>{1, 1, 1},
                                           std::vector<int>{300, 150, 260}));

TEST_P(MatmulBf16Shapes, ProductsOfRoundedOperandsAccumulatedInFp32) {
  const Layer L(GetParam()[0], GetParam()[1], GetParam()[2]);
  const auto be = make_cpu_backend(GemmPrecision::Bf16);
  const Results r = run_layer(*be, L, L.bias);
  const FVec inp = rounded(L.inp), w = rounded(L.w), dout = rounded(L.dout);
  EXPECT_LT(normwise_error(r.out, L.out(inp, w, L.bias)), kTol);
  EXPECT_LT(normwise_error(r.dinp, L.dinp(dout, w)), kTol);
  EXPECT_LT(normwise_error(r.dw, L.dw(dout, inp)), kTol);
  EXPECT_LT(normwise_error(r.dbias, L.dbias()), kTol);
}

TEST(MatmulBf16, DiffersFromFp32) {
  const Layer L(9, 7, 11);
  const auto bf16 = make_cpu_backend(GemmPrecision::Bf16);
  const auto fp32 = make_cpu_backend();
  const Results b = run_layer(*bf16, L, {}), f = run_layer(*fp32, L, {});
  // fp32 mode is the unrounded product, and bf16 mode is as far from it as rounding makes it.
  EXPECT_LT(normwise_error(f.out, L.out(L.inp, L.w, {})), kTol);
  EXPECT_GT(normwise_error(b.out, L.out(L.inp, L.w, {})), 1e-4);
  EXPECT_LT(normwise_error(b.out, L.out(L.inp, L.w, {})), 2e-2);
  EXPECT_GT(normwise_error(b.dinp, L.dinp(L.dout, L.w)), 1e-4);
  EXPECT_GT(normwise_error(b.dw, L.dw(L.dout, L.inp)), 1e-4);
  // dbias sums the fp32 gradient in both modes, in the same order.
  EXPECT_EQ(b.dbias, f.dbias);
}

// A bias far from the bfloat16 grid: at ~100 bfloat16 values are 0.5 apart, so a rounded bias
// would be off by up to 0.25, far beyond the tolerance.
TEST(MatmulBf16, BiasIsNotRounded) {
  const Layer L(9, 7, 11);
  FVec bias = random_floats(static_cast<size_t>(L.OC), 21, 100.0f, 101.0f);
  for (float& b : bias) b = round_bf16(b) + 0.1875f;  // between two bfloat16 values
  const auto be = make_cpu_backend(GemmPrecision::Bf16);
  const Results r = run_layer(*be, L, bias);
  const std::vector<double> ref = L.out(rounded(L.inp), rounded(L.w), bias);
  for (size_t i = 0; i < ref.size(); ++i) ASSERT_NEAR(r.out[i], ref[i], 1e-4) << i;
}

TEST(MatmulBf16, ResultsAreBitExactAcrossThreadCountsAndWithoutDinp) {
  const Layer L(520, 140, 270);
  const int before = omp_get_max_threads();
  std::vector<Results> runs;
  for (const int threads : {1, 2}) {
    omp_set_num_threads(threads);
    const auto be = make_cpu_backend(GemmPrecision::Bf16);
    runs.push_back(run_layer(*be, L, L.bias));
  }
  omp_set_num_threads(before);
  EXPECT_EQ(runs[0].out, runs[1].out);
  EXPECT_EQ(runs[0].dinp, runs[1].dinp);
  EXPECT_EQ(runs[0].dw, runs[1].dw);
  EXPECT_EQ(runs[0].dbias, runs[1].dbias);
  // dinp and dbias left out: the same dw.
  cpu::Bf16Operands scratch;
  scratch.reserve(L.N, L.IC, L.OC);
  FVec dw = L.dw0;
  cpu::matmul_backward(nullptr, dw.data(), nullptr, L.dout.data(), L.inp.data(), L.w.data(), L.N,
                       L.IC, L.OC, &scratch);
  EXPECT_EQ(dw, runs[0].dw);
}

TEST(MatmulBf16, ScratchIsReservedAndOnlyGrows) {
  cpu::Bf16Operands scratch;
  scratch.reserve(10, 100, 1);  // inp 1000 floats, w 100, dout 10
  const FVec big = random_floats(1000, 31), small = random_floats(10, 32);
  const float* p = scratch.round(cpu::Bf16Operands::kInp, big.data(), big.size());
  EXPECT_EQ(scratch.round(cpu::Bf16Operands::kInp, small.data(), small.size()), p);
  EXPECT_EQ(scratch.round(cpu::Bf16Operands::kInp, big.data(), big.size()), p);
  EXPECT_NE(scratch.round(cpu::Bf16Operands::kWeight, small.data(), small.size()), p);
  const FVec expect = rounded(big);
  EXPECT_TRUE(std::equal(expect.begin(), expect.end(), p));
  // More than reserved: an error, not an allocation in the middle of a step.
  EXPECT_THROW(scratch.round(cpu::Bf16Operands::kDout, big.data(), 11), std::logic_error);
  EXPECT_THROW(scratch.round(cpu::Bf16Operands::kWeight, big.data(), 101), std::logic_error);
  // A smaller reservation keeps the larger one.
  scratch.reserve(1, 1, 1);
  EXPECT_EQ(scratch.round(cpu::Bf16Operands::kInp, big.data(), big.size()), p);
}

TEST(MatmulBf16, BackendThrowsBeyondItsReservation) {
  const Layer L(9, 7, 11), wide(9, 7, 12);
  const auto be = make_cpu_backend(GemmPrecision::Bf16);
  FVec out(static_cast<size_t>(wide.N) * wide.OC);
  // Nothing reserved yet.
  EXPECT_THROW(be->matmul_forward(out.data(), L.inp.data(), L.w.data(), nullptr, L.N, L.IC, L.OC),
               std::logic_error);
  run_layer(*be, L, L.bias);  // reserves L
  EXPECT_THROW(be->matmul_forward(out.data(), wide.inp.data(), wide.w.data(), nullptr, wide.N,
                                  wide.IC, wide.OC),
               std::logic_error);
  // fp32 mode needs no scratch.
  const auto fp32 = make_cpu_backend();
  fp32->matmul_forward(out.data(), wide.inp.data(), wide.w.data(), nullptr, wide.N, wide.IC,
                       wide.OC);
}

}  // namespace
}  // namespace ph
