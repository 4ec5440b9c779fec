// The linear layer's forward on packed weights (kernels/cpu/packed_matmul.h) against a
// double-precision reference, on shapes that leave partial panels and partial row tiles, with
// each tile this CPU runs (portable; AVX-512, which must match it bit for bit); each row's result
// independent of the row count and the thread count; and the CPU backend's weight
// store (Backend::WeightStore): which products read it, that it keeps the copy it made, and
// what a decoding step changes (OpenMP's threads; attention and gathers split over the team).
#include <gtest/gtest.h>
#include <omp.h>

#include <cstdint>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/packed_matmul.h"
#include "tests/reference_checks.h"

namespace ph {
namespace {

using testing::bit_equal;
using testing::FVec;
using testing::kTol;
using testing::random_floats;
using testing::rel_err;
using testing::to_double;
using testing::Vec;

Vec matmul_ref(const FVec& x, const FVec& w, const FVec& bias, int N, int IC, int OC) {
  Vec out(static_cast<size_t>(N) * static_cast<size_t>(OC));
  for (int n = 0; n < N; ++n)
    for (int o = 0; o < OC; ++o) {
      double s = bias.empty() ? 0.0 : bias[static_cast<size_t>(o)];
      for (int i = 0; i < IC; ++i)
        s += static_cast<double>(x[static_cast<size_t>(n * IC + i)]) *
             w[static_cast<size_t>(o * IC + i)];
      out[static_cast<size_t>(n * OC + o)] = s;
    }
  return out;
}

FVec packed_of(const FVec& w, int IC, int OC, cpu::PackedKernel kernel = cpu::PackedKernel::Best) {
  FVec p(cpu::packed_weight_size(IC, OC, kernel), 5.0f);  // every element must be written
  cpu::pack_weight(p.data(), w.data(), IC, OC, kernel);
  return p;
}

// out [N, OC] from the packed weights on `threads` threads, with a sentinel tail that must stay
// untouched.
FVec forward_packed(const FVec& x, const FVec& packed, const FVec& bias, int N, int IC, int OC,
                    int threads = 2, cpu::PackedKernel kernel = cpu::PackedKernel::Best) {
  const size_t n = static_cast<size_t>(N) * static_cast<size_t>(OC);
  FVec out(n + 8, 7.0f);
  cpu::matmul_forward_packed(out.data(), x.data(), packed.data(),
                             bias.empty() ? nullptr : bias.data(), N, IC, OC, threads, kernel);
  for (size_t k = n; k < out.size(); ++k) EXPECT_EQ(out[k], 7.0f) << "written past the output";
  out.resize(n);
  return out;
}

// The tiles this CPU can run: the portable one, and the AVX-512 one where the CPU has it.
std::vector<cpu::PackedKernel> kernels_here() {
  std::vector<cpu::PackedKernel> k{cpu::PackedKernel::Portable};
  if (cpu::packed_kernel() == cpu::PackedKernel::Avx512) k.push_back(cpu::PackedKernel::Avx512);
  return k;
}

// Widths below, at and past a panel (24 portable, 32 AVX-512); row counts below, at and past a
// portable tile (4) and an AVX-512 tile (12).
const int kShapes[][3] = {{1, 1, 1},    {3, 7, 5},     {4, 16, 24}, {5, 33, 25},
                          {9, 40, 49},  {13, 384, 72}, {2, 5, 47},  {12, 9, 32},
                          {25, 17, 50}, {7, 3, 33},    {14, 20, 64}};

TEST(PackedMatmul, ForwardMatchesTheReference) {
  for (const cpu::PackedKernel kernel : kernels_here())
    for (const auto& s : kShapes)
      for (const bool with_bias : {true, false}) {
        const int N = s[0], IC = s[1], OC = s[2];
        SCOPED_TRACE(::testing::Message() << "kernel=" << static_cast<int>(kernel) << " N=" << N
                                          << " IC=" << IC << " OC=" << OC << " bias=" << with_bias);
        const FVec x = random_floats(static_cast<size_t>(N * IC), 41);
        const FVec w = random_floats(static_cast<size_t>(OC * IC), 42);
        const FVec bias = with_bias ? random_floats(static_cast<size_t>(OC), 43) : FVec{};
        const FVec out =
            forward_packed(x, packed_of(w, IC, OC, kernel), bias, N, IC, OC, 2, kernel);
        EXPECT_LT(rel_err(out, matmul_ref(x, w, bias, N, IC, OC)), kTol);
      }
}

TEST(PackedMatmul, TheAvx512TileGivesThePortableResultBitForBit) {
  if (cpu::packed_kernel() != cpu::PackedKernel::Avx512)
    GTEST_SKIP() << "this CPU has no AVX-512: only the portable tile runs here";
  for (const auto& s : kShapes) {
    const int N = s[0], IC = s[1], OC = s[2];
    SCOPED_TRACE(::testing::Message() << "N=" << N << " IC=" << IC << " OC=" << OC);
    const FVec x = random_floats(static_cast<size_t>(N * IC), 44);
    const FVec w = random_floats(static_cast<size_t>(OC * IC), 45);
    const FVec bias = random_floats(static_cast<size_t>(OC), 46);
    const cpu::PackedKernel wide = cpu::PackedKernel::Avx512,
                            portable = cpu::PackedKernel::Portable;
    EXPECT_TRUE(
        bit_equal(forward_packed(x, packed_of(w, IC, OC, wide), bias, N, IC, OC, 1, wide),
                  forward_packed(x, packed_of(w, IC, OC, portable), bias, N, IC, OC, 1, portable)));
  }
}

TEST(PackedMatmul, ARowsResultDependsOnNeitherTheRowCountNorTheThreads) {
  const int N = 301, IC = 50, OC = 53;  // two blocks of rows
  const FVec x = random_floats(static_cast<size_t>(N * IC), 51);
  const FVec packed = packed_of(random_floats(static_cast<size_t>(OC * IC), 52), IC, OC);
  const FVec bias = random_floats(static_cast<size_t>(OC), 53);
  const FVec one = forward_packed(x, packed, bias, N, IC, OC, 1);
  for (const int threads : {2, 3})
    EXPECT_TRUE(bit_equal(one, forward_packed(x, packed, bias, N, IC, OC, threads)))
        << threads << " threads";
  for (const int r : {0, 1, 5, 255, 256, 300}) {  // row r alone, at the start of its own product
    const FVec row(x.begin() + r * IC, x.begin() + (r + 1) * IC);
    const FVec alone = forward_packed(row, packed, bias, 1, IC, OC);
    EXPECT_TRUE(bit_equal(alone, FVec(one.begin() + r * OC, one.begin() + (r + 1) * OC)))
        << "row " << r;
  }
}

TEST(PackedMatmul, TheCacheMakesOneCopyPerWeightAndShape) {
  const int IC = 10, OC = 30;
  const FVec w = random_floats(static_cast<size_t>(2 * OC * IC), 61);
  cpu::PackedWeightCache cache;
  const float* a = cache.get(w.data(), IC, OC);
  EXPECT_EQ(cache.get(w.data(), IC, OC), a);
  EXPECT_EQ(cache.floats(), cpu::packed_weight_size(IC, OC));
  const float* b = cache.get(w.data() + OC * IC, IC, OC);  // another weight
  EXPECT_NE(b, a);
  cache.get(w.data(), IC, OC / 2);  // the same pointer, another shape
  EXPECT_EQ(cache.floats(),
            2 * cpu::packed_weight_size(IC, OC) + cpu::packed_weight_size(IC, OC / 2));
  EXPECT_TRUE(bit_equal(FVec(a, a + cpu::packed_weight_size(IC, OC)), packed_of(w, IC, OC)));
}

// The backend's matmul_forward reads the store's packed copy while the store is in use, on
// products of up to 512 rows; larger products and products outside the scope take the sgemm
// path. The copy is made at the first use, so a weight changed afterwards is not seen inside
// the scope (which is why a decoder is made anew after training steps): that is how the test
// tells the paths apart, whether or not their roundings differ.
TEST(PackedMatmul, TheBackendReadsItsStoreInsideTheScopeOnly) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  EXPECT_EQ(make_cpu_backend(GemmPrecision::Bf16)->make_weight_store(), nullptr);
  const int IC = 32, OC = 40;
  const FVec bias = random_floats(static_cast<size_t>(OC), 72);
  for (const int N : {3, 512, 513}) {
    SCOPED_TRACE(::testing::Message() << "N=" << N);
    const std::unique_ptr<Backend::WeightStore> store = be->make_weight_store();
    ASSERT_NE(store, nullptr);
    FVec w = random_floats(static_cast<size_t>(OC * IC), 71);
    const FVec packed = packed_of(w, IC, OC);
    const FVec x = random_floats(static_cast<size_t>(N * IC), 73);
    const size_t n = static_cast<size_t>(N * OC);
    FVec first(n), later(n), outside(n), sgemm(n);
    auto forward = [&](FVec& out) {
      be->matmul_forward(out.data(), x.data(), w.data(), bias.data(), N, IC, OC);
    };
    {
      const UseWeightStore use(*be, store.get());
      forward(first);
      for (float& v : w) v = -v;
      forward(later);
    }
    forward(outside);
    cpu::matmul_forward(sgemm.data(), x.data(), w.data(), bias.data(), N, IC, OC);
    EXPECT_TRUE(bit_equal(outside, sgemm));
    if (N <= 512) {
      EXPECT_TRUE(bit_equal(first, forward_packed(x, packed, bias, N, IC, OC)));
      EXPECT_TRUE(bit_equal(later, first)) << "the store did not keep its copy";
    } else {
      EXPECT_TRUE(bit_equal(later, sgemm)) << "a product of 513 rows read the store";
    }
  }
}

// In a decoding step OpenMP runs on the calling thread alone, every product reads the store
// (513 rows too), and the thread count comes back when the scope ends.
TEST(PackedMatmul, ADecodingStepRunsOpenMpOnOneThreadAndEveryProductPacked) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  const std::unique_ptr<Backend::WeightStore> store = be->make_weight_store();
  const int before = omp_get_max_threads();
  ASSERT_GE(before, 2) << "run with OMP_NUM_THREADS >= 2";
  const int N = 513, IC = 16, OC = 20;
  FVec w = random_floats(static_cast<size_t>(OC * IC), 81);
  const FVec packed = packed_of(w, IC, OC);
  const FVec x = random_floats(static_cast<size_t>(N * IC), 82);
  FVec got(static_cast<size_t>(N * OC));
  {
    const UseWeightStore use(*be, store.get(), /*decoding_step=*/true);
    EXPECT_EQ(omp_get_max_threads(), 1);
    be->matmul_forward(got.data(), x.data(), w.data(), nullptr, N, IC, OC);
  }
  EXPECT_EQ(omp_get_max_threads(), before);
  EXPECT_TRUE(bit_equal(got, forward_packed(x, packed, FVec{}, N, IC, OC)));
  {
    const UseWeightStore use(*be, store.get());  // not a step: OpenMP keeps its threads
    EXPECT_EQ(omp_get_max_threads(), before);
  }
}

// In a decoding step attention and the row gathers run in parts of the samples (rows) on the
// products' team: the same values, bit for bit, as one call outside a step. Shapes of cross-
// attention (4 beams per source, padded sources) and of the causal self-attention step.
TEST(PackedMatmul, ADecodingStepSplitsAttentionAndGathersWithTheSameResult) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  const std::unique_ptr<Backend::WeightStore> store = be->make_weight_store();
  ASSERT_GE(omp_get_max_threads(), 2) << "run with OMP_NUM_THREADS >= 2";
  struct Shape {
    int B, Tq, Tk;
    bool causal, lengths;
  };
  for (const Shape sh :
       {Shape{37, 4, 7, false, true}, Shape{61, 1, 5, false, false}, Shape{9, 3, 3, true, false}}) {
    SCOPED_TRACE(::testing::Message() << "B=" << sh.B << " Tq=" << sh.Tq << " Tk=" << sh.Tk);
    AttentionDims d;
    d.B = sh.B;
    d.Tq = sh.Tq;
    d.Tk = sh.Tk;
    d.H = 6;
    d.C = 48;
    d.ldq = d.C;
    d.ldkv = 2 * d.C;
    d.causal = sh.causal;
    std::vector<int32_t> key_len(static_cast<size_t>(sh.B));
    for (int b = 0; b < sh.B; ++b) key_len[static_cast<size_t>(b)] = 1 + (b * 5) % sh.Tk;
    if (sh.lengths) d.key_len = key_len.data();
    const FVec q = random_floats(static_cast<size_t>(sh.B * sh.Tq * d.C), 91);
    const FVec kv = random_floats(static_cast<size_t>(sh.B * sh.Tk * 2 * d.C), 92);
    const size_t outs = static_cast<size_t>(sh.B * sh.Tq * d.C);
    const size_t probs = static_cast<size_t>(sh.B * d.H * sh.Tq * sh.Tk);
    FVec out_step(outs, 3.0f), att_step(probs, 3.0f), out_one(outs, 4.0f), att_one(probs, 4.0f);
    {
      const UseWeightStore use(*be, store.get(), /*decoding_step=*/true);
      be->attention_forward(out_step.data(), att_step.data(), q.data(), kv.data(), d, DropoutSpec{},
                            AttentionCoords{});
    }
    be->attention_forward(out_one.data(), att_one.data(), q.data(), kv.data(), d, DropoutSpec{},
                          AttentionCoords{});
    EXPECT_TRUE(bit_equal(out_step, out_one));
    EXPECT_TRUE(bit_equal(att_step, att_one));
  }
  const int n = 300, C = 24, rows_in = 50;
  const FVec inp = random_floats(static_cast<size_t>(rows_in * C), 93);
  std::vector<int32_t> rows(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) rows[static_cast<size_t>(i)] = i % 17 == 0 ? -1 : (i * 7) % rows_in;
  FVec step(static_cast<size_t>(n * C), 3.0f), one(static_cast<size_t>(n * C), 4.0f);
  {
    const UseWeightStore use(*be, store.get(), /*decoding_step=*/true);
    be->gather_rows(step.data(), inp.data(), rows.data(), n, C);
  }
  be->gather_rows(one.data(), inp.data(), rows.data(), n, C);
  EXPECT_TRUE(bit_equal(step, one));
}

}  // namespace
}  // namespace ph
