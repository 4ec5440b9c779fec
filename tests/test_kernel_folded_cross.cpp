// Cross-attention folded into a short memory (kernels/cpu/attention.h, FoldedCrossDims) against
// a double-precision reference of what it folds: the q projection, masked softmax attention per
// head over the memory's keys and values, and the output projection with its bias. Shapes with
// a query width that is no multiple of 8, an output width that leaves 24-, 8- and 1-channel
// blocks, query groups that are no multiple of the 4-row blocks, a source with no visible key,
// and groups that read other folded sources (sources leaving a batch). Each row's result is the
// same whatever range of groups a call computes and whatever the thread count; the CPU backend
// folds only with fp32 GEMMs, and a backend that does not fold says so with a logic error.
// The op is for incremental decoding only: it has no backward, so no gradient check.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/backend.h"
#include "kernels/cpu/attention.h"
#include "tests/random_data.h"
#include "tests/reference_checks.h"

namespace ph {
namespace {

using testing::bit_equal;
using testing::FVec;
using testing::kTol;
using testing::random_floats;
using testing::rel_err;
using testing::Vec;
using testing::with_threads;

struct Case {
  int sources = 3, Tk = 5, H = 2, hs = 4, C = 20, Cout = 37, beams = 5;
  std::vector<int32_t> key_len = {5, 2, 0};  // per query group
  std::vector<int32_t> source = {2, 0, 1};   // the folded source each group reads
  FVec kv, wq, bq, wo, bias, x;

  explicit Case(bool q_bias = true) {
    const int Cl = H * hs;
    kv = random_floats(static_cast<size_t>(sources * Tk * 2 * Cl), 1);
    wq = random_floats(static_cast<size_t>(Cl * C), 2);
    if (q_bias) bq = random_floats(static_cast<size_t>(Cl), 3);
    wo = random_floats(static_cast<size_t>(Cout * Cl), 4);
    bias = random_floats(static_cast<size_t>(Cout), 5);
    x = random_floats(static_cast<size_t>(groups() * beams * C), 6);
  }
  int groups() const { return static_cast<int>(source.size()); }
  FoldedCrossDims dims() const {
    FoldedCrossDims d;
    d.B = sources;
    d.Tk = Tk;
    d.beams = beams;
    d.C = C;
    d.Cout = Cout;
    d.H = H;
    d.hs = hs;
    d.ldkv = 2 * H * hs;
    return d;
  }
  FoldedCrossDims step_dims() const {
    FoldedCrossDims d = dims();
    d.B = groups();
    d.sources = sources;
    d.key_len = key_len.data();
    d.source = source.data();
    return d;
  }

  // y [groups * beams, Cout] computed the unfolded way, in double.
  Vec reference() const {
    const int Cl = H * hs, ldkv = 2 * Cl;
    Vec y(static_cast<size_t>(groups() * beams * Cout));
    for (int g = 0; g < groups(); ++g) {
      const int b = source[static_cast<size_t>(g)], n = key_len[static_cast<size_t>(g)];
      for (int r = 0; r < beams; ++r) {
        const size_t row = static_cast<size_t>(g * beams + r);
        Vec q(static_cast<size_t>(Cl)), ctx(static_cast<size_t>(Cl), 0.0);
        for (int o = 0; o < Cl; ++o) {
          double s = bq.empty() ? 0.0 : bq[static_cast<size_t>(o)];
          for (int c = 0; c < C; ++c)
            s += static_cast<double>(x[row * C + static_cast<size_t>(c)]) *
                 wq[static_cast<size_t>(o * C + c)];
          q[static_cast<size_t>(o)] = s;
        }
        for (int h = 0; h < H && n > 0; ++h) {
          Vec p(static_cast<size_t>(n));
          double mx = -INFINITY, sum = 0.0;
          for (int j = 0; j < n; ++j) {
            const float* k = kv.data() + static_cast<size_t>((b * Tk + j) * ldkv + h * hs);
            double s = 0.0;
            for (int d = 0; d < hs; ++d) s += q[static_cast<size_t>(h * hs + d)] * k[d];
            p[static_cast<size_t>(j)] = s / std::sqrt(static_cast<double>(hs));
            mx = std::max(mx, p[static_cast<size_t>(j)]);
          }
          for (double& v : p) sum += (v = std::exp(v - mx));
          for (int j = 0; j < n; ++j) {
            const float* v = kv.data() + static_cast<size_t>((b * Tk + j) * ldkv + Cl + h * hs);
            for (int d = 0; d < hs; ++d)
              ctx[static_cast<size_t>(h * hs + d)] += p[static_cast<size_t>(j)] / sum * v[d];
          }
        }
        for (int o = 0; o < Cout; ++o) {
          double s = bias[static_cast<size_t>(o)];
          for (int c = 0; c < Cl; ++c)
            s += ctx[static_cast<size_t>(c)] * wo[static_cast<size_t>(o * Cl + c)];
          y[row * static_cast<size_t>(Cout) + static_cast<size_t>(o)] = s;
        }
      }
    }
    return y;
  }

  FVec fold() const {
    FVec folded(cpu::folded_cross_floats(dims()));
    cpu::fold_cross_memory(folded.data(), kv.data(), wq.data(), bq.empty() ? nullptr : bq.data(),
                           wo.data(), dims());
    return folded;
  }
  FVec step(const FVec& folded, int first, int last) const {
    FVec y(static_cast<size_t>(groups() * beams * Cout), NAN);
    cpu::folded_cross_attention(y.data(), x.data(), folded.data(), bias.data(), step_dims(), first,
                                last);
    return y;
  }
};

TEST(FoldedCrossAttention, MatchesTheUnfoldedAttentionInDouble) {
  for (bool q_bias : {true, false}) {
    const Case c(q_bias);
    const FVec y = c.step(c.fold(), 0, c.groups());
    EXPECT_LT(rel_err(y, c.reference()), kTol) << "q bias " << q_bias;
  }
}

// A group that sees no key (key_len 0) gets the bias alone, as the unfolded attention's zero
// context through the projection; the others are not that.
TEST(FoldedCrossAttention, AGroupWithoutKeysGetsTheBias) {
  const Case c;
  const FVec y = c.step(c.fold(), 0, c.groups());
  for (int r = 0; r < c.beams; ++r)
    for (int o = 0; o < c.Cout; ++o) {
      const size_t at = static_cast<size_t>((2 * c.beams + r) * c.Cout + o);
      EXPECT_EQ(y[at], c.bias[static_cast<size_t>(o)]);
      EXPECT_NE(y[at - static_cast<size_t>(c.beams * c.Cout)], c.bias[static_cast<size_t>(o)]);
    }
}

// Each group's rows come out the same whether a call computes every group or one, on one thread
// or two; the ranges leave the other rows untouched.
TEST(FoldedCrossAttention, RowsDoNotDependOnTheRangeOrThreads) {
  const Case c;
  const FVec folded = c.fold();
  const FVec all = c.step(folded, 0, c.groups());
  FVec parts(all.size(), NAN);
  for (int g = 0; g < c.groups(); ++g) {
    const FVec one = c.step(folded, g, g + 1);
    const size_t lo = static_cast<size_t>(g * c.beams * c.Cout),
                 hi = lo + static_cast<size_t>(c.beams * c.Cout);
    for (size_t i = 0; i < one.size(); ++i) {
      if (i >= lo && i < hi)
        parts[i] = one[i];
      else
        ASSERT_TRUE(std::isnan(one[i])) << "group " << g << " wrote outside its rows";
    }
  }
  EXPECT_TRUE(bit_equal(parts, all));
  FVec one_thread;
  with_threads(1, [&] { one_thread = c.step(c.fold(), 0, c.groups()); });
  EXPECT_TRUE(bit_equal(one_thread, all));
}

TEST(FoldedCrossAttention, OnlyTheFp32CpuBackendFolds) {
  const std::unique_ptr<Backend> fp32 = make_cpu_backend(GemmPrecision::Fp32);
  const std::unique_ptr<Backend> bf16 = make_cpu_backend(GemmPrecision::Bf16);
  const Case c;
  EXPECT_TRUE(fp32->folds_cross_attention());
  EXPECT_EQ(fp32->folded_cross_floats(c.dims()), cpu::folded_cross_floats(c.dims()));
  // Through the backend, the same as the kernels.
  FVec folded(fp32->folded_cross_floats(c.dims())), y(c.x.size() / c.C * c.Cout);
  fp32->fold_cross_memory(folded.data(), c.kv.data(), c.wq.data(), c.bq.data(), c.wo.data(),
                          c.dims());
  fp32->folded_cross_attention(y.data(), c.x.data(), folded.data(), c.bias.data(), c.step_dims());
  EXPECT_TRUE(bit_equal(y, c.step(c.fold(), 0, c.groups())));
  EXPECT_FALSE(bf16->folds_cross_attention());
  EXPECT_THROW(bf16->folded_cross_floats(c.dims()), std::logic_error);
  EXPECT_THROW(bf16->fold_cross_memory(folded.data(), c.kv.data(), c.wq.data(), c.bq.data(),
                                       c.wo.data(), c.dims()),
               std::logic_error);
  EXPECT_THROW(bf16->folded_cross_attention(y.data(), c.x.data(), folded.data(), c.bias.data(),
                                            c.step_dims()),
               std::logic_error);
}

}  // namespace
}  // namespace ph
