// The CPU backend's linear layer, cross-entropy, element-wise ops and row gathers against
// straightforward double-precision references, finite differences, op-specific contracts, and
// bit-exactness across OpenMP thread counts (the other kernels: test_kernel_ops.cpp).
#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <vector>

#include "kernels/common/activations.h"
#include "kernels/cpu/activation.h"
#include "kernels/cpu/crossentropy.h"
#include "kernels/cpu/matmul.h"
#include "kernels/cpu/residual.h"
#include "kernels/cpu/rows.h"
#include "tests/reference_checks.h"

namespace ph {
namespace {

using testing::added;
using testing::bit_equal;
using testing::fd_grad;
using testing::FVec;
using testing::kFdTol;
using testing::kTol;
using testing::random_floats;
using testing::rel_err;
using testing::to_double;
using testing::Vec;
using testing::with_threads;

// ---------------------------------------------------------------------------------------------
// matmul

Vec matmul_ref(const Vec& x, const Vec& w, const Vec& bias, int N, int IC, int OC) {
  Vec out(static_cast<size_t>(N) * OC);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      double s = bias.empty() ? 0.0 : bias[o];
      for (int i = 0; i < IC; ++i)
        s += x[static_cast<size_t>(n) * IC + i] * w[static_cast<size_t>(o) * IC + i];
      out[static_cast<size_t>(n) * OC + o] = s;
    }
  }
  return out;
}

void check_matmul(int N, int IC, int OC, bool finite_differences) {
  SCOPED_TRACE(::testing::Message() << "N=" << N << " IC=" << IC << " OC=" << OC);
  const FVec x = random_floats(static_cast<size_t>(N) * IC, 31),
             w = random_floats(static_cast<size_t>(OC) * IC, 32);
  const FVec bias = random_floats(OC, 33);
  const Vec xd = to_double(x), wd = to_double(w), bd = to_double(bias);
  FVec out(static_cast<size_t>(N) * OC, 9.0f);
  cpu::matmul_forward(out.data(), x.data(), w.data(), bias.data(), N, IC, OC);
  EXPECT_LT(rel_err(out, matmul_ref(xd, wd, bd, N, IC, OC)), kTol);
  cpu::matmul_forward(out.data(), x.data(), w.data(), nullptr, N, IC, OC);
  EXPECT_LT(rel_err(out, matmul_ref(xd, wd, {}, N, IC, OC)), kTol);

  const Vec g = to_double(random_floats(out.size(), 34));
  const FVec dout(g.begin(), g.end());
  const FVec dx0 = random_floats(x.size(), 35), dw0 = random_floats(w.size(), 36),
             db0 = random_floats(OC, 37);
  FVec dx = dx0, dw = dw0, db = db0;
  cpu::matmul_backward(dx.data(), dw.data(), db.data(), dout.data(), x.data(), w.data(), N, IC, OC);
  // Reference gradients of L = sum g * out.
  Vec rdx(x.size(), 0.0), rdw(w.size(), 0.0), rdb(OC, 0.0);
  for (int n = 0; n < N; ++n) {
    for (int o = 0; o < OC; ++o) {
      const double d = g[static_cast<size_t>(n) * OC + o];
      rdb[o] += d;
      for (int i = 0; i < IC; ++i) {
        rdx[static_cast<size_t>(n) * IC + i] += d * wd[static_cast<size_t>(o) * IC + i];
        rdw[static_cast<size_t>(o) * IC + i] += d * xd[static_cast<size_t>(n) * IC + i];
      }
    }
  }
  EXPECT_LT(rel_err(added(dx, dx0), rdx), kTol);
  EXPECT_LT(rel_err(added(dw, dw0), rdw), kTol);
  EXPECT_LT(rel_err(added(db, db0), rdb), kTol);
  if (finite_differences) {
    EXPECT_LT(
        rel_err(added(dx, dx0),
                fd_grad(xd, g, [&](const Vec& v) { return matmul_ref(v, wd, bd, N, IC, OC); })),
        kFdTol);
    EXPECT_LT(
        rel_err(added(dw, dw0),
                fd_grad(wd, g, [&](const Vec& v) { return matmul_ref(xd, v, bd, N, IC, OC); })),
        kFdTol);
    EXPECT_LT(
        rel_err(added(db, db0),
                fd_grad(bd, g, [&](const Vec& v) { return matmul_ref(xd, wd, v, N, IC, OC); })),
        kFdTol);
  }
  // dinp and dbias may be null: dw alone is the same.
  FVec dw2 = dw0;
  cpu::matmul_backward(nullptr, dw2.data(), nullptr, dout.data(), x.data(), w.data(), N, IC, OC);
  EXPECT_TRUE(bit_equal(dw2, dw));
}

TEST(Matmul, SmallOddShapeWithFiniteDifferences) {
  check_matmul(9, 7, 11, true);
}

TEST(Matmul, ShapesCrossingTheBlocks) {
  check_matmul(300, 150, 260, false);
}

TEST(Matmul, BackwardIsBitExactAcrossThreadCounts) {
  const int N = 520, IC = 140, OC = 270;
  const FVec x = random_floats(static_cast<size_t>(N) * IC, 38),
             w = random_floats(static_cast<size_t>(OC) * IC, 39);
  const FVec dout = random_floats(static_cast<size_t>(N) * OC, 40);
  FVec dx1(x.size(), 0.5f), dw1(w.size(), 0.5f), db1(OC, 0.5f);
  FVec dx2 = dx1, dw2 = dw1, db2 = db1;
  with_threads(1, [&] {
    cpu::matmul_backward(dx1.data(), dw1.data(), db1.data(), dout.data(), x.data(), w.data(), N, IC,
                         OC);
  });
  with_threads(2, [&] {
    cpu::matmul_backward(dx2.data(), dw2.data(), db2.data(), dout.data(), x.data(), w.data(), N, IC,
                         OC);
  });
  EXPECT_TRUE(bit_equal(dx1, dx2));
  EXPECT_TRUE(bit_equal(dw1, dw2));
  EXPECT_TRUE(bit_equal(db1, db2));
}

// ---------------------------------------------------------------------------------------------
// cross-entropy

constexpr int kIgnore = -100;

Vec ce_losses_ref(const Vec& logits, const std::vector<int32_t>& t, int N, int V, int Vp) {
  Vec loss(N, 0.0);
  for (int n = 0; n < N; ++n) {
    if (t[n] == kIgnore) continue;
    double mx = -1e300, s = 0.0;
    for (int j = 0; j < V; ++j) mx = std::max(mx, logits[n * Vp + j]);
    for (int j = 0; j < V; ++j) s += std::exp(logits[n * Vp + j] - mx);
    loss[n] = std::log(s) + mx - logits[n * Vp + t[n]];
  }
  return loss;
}

TEST(CrossEntropy, ForwardFusedIgnoreIndexAndPaddedVocab) {
  const int N = 6, V = 11, Vp = 16;
  const std::vector<int32_t> targets = {3, kIgnore, 0, 10, 7, kIgnore};
  FVec logits = random_floats(N * Vp, 51, -4.0f, 4.0f);
  for (int n = 0; n < N; ++n) {
    for (int j = V; j < Vp; ++j) logits[n * Vp + j] = 1e4f;  // padding must never count
  }
  logits[2 * Vp + 5] = 60.0f;  // a large logit: the log-sum-exp must stay finite
  const Vec ld = to_double(logits);
  FVec losses(N, 9.0f);
  cpu::crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V, Vp, kIgnore, 0.0f);
  const Vec ref = ce_losses_ref(ld, targets, N, V, Vp);
  EXPECT_LT(rel_err(losses, ref), kTol);
  EXPECT_EQ(losses[1], 0.0f);
  EXPECT_EQ(losses[5], 0.0f);

  const float dloss = 0.25f;
  FVec fused = logits, flosses(N, 9.0f);
  cpu::crossentropy_fused(fused.data(), flosses.data(), targets.data(), N, V, Vp, kIgnore, 0.0f,
                          dloss);
  EXPECT_LT(rel_err(flosses, ref), kTol);
  // Separate reference backward: (softmax - onehot) * dloss, 0 for padding and ignored rows.
  Vec dref(ld.size(), 0.0);
  for (int n = 0; n < N; ++n) {
    if (targets[n] == kIgnore) continue;
    double mx = -1e300, s = 0.0;
    for (int j = 0; j < V; ++j) mx = std::max(mx, ld[n * Vp + j]);
    for (int j = 0; j < V; ++j) s += std::exp(ld[n * Vp + j] - mx);
    for (int j = 0; j < V; ++j)
      dref[n * Vp + j] = (std::exp(ld[n * Vp + j] - mx) / s - (j == targets[n])) * dloss;
  }
  EXPECT_LT(rel_err(fused, dref), kTol);
  for (int n = 0; n < N; ++n) {
    for (int j = V; j < Vp; ++j) EXPECT_EQ(fused[n * Vp + j], 0.0f);
    if (targets[n] == kIgnore) {
      for (int j = 0; j < Vp; ++j) EXPECT_EQ(fused[n * Vp + j], 0.0f);
    }
  }
  // Finite differences of L = dloss * sum of losses.
  const Vec w(N, static_cast<double>(dloss));
  const Vec fd = fd_grad(ld, w, [&](const Vec& v) { return ce_losses_ref(v, targets, N, V, Vp); });
  EXPECT_LT(rel_err(fused, fd), kFdTol);
}

TEST(CrossEntropy, TargetOutsideTheVocabularyIsANaNLoss) {
  const int N = 2, V = 5, Vp = 8;
  const std::vector<int32_t> targets = {5, 2};
  FVec logits = random_floats(N * Vp, 52);
  FVec losses(N);
  cpu::crossentropy_forward(losses.data(), logits.data(), targets.data(), N, V, Vp, kIgnore, 0.0f);
  EXPECT_TRUE(std::isnan(losses[0]));
  EXPECT_TRUE(std::isfinite(losses[1]));
  cpu::crossentropy_fused(logits.data(), losses.data(), targets.data(), N, V, Vp, kIgnore, 0.0f,
                          1.0f);
  EXPECT_TRUE(std::isnan(losses[0]));
  for (int j = 0; j < Vp; ++j) EXPECT_EQ(logits[j], 0.0f);
}

// ---------------------------------------------------------------------------------------------
// element-wise ops

TEST(Activation, GeluAndReluAgainstReferenceAndFiniteDifferences) {
  const size_t n = 1000 + 37;  // not a multiple of a vector width
  const FVec x = random_floats(n, 61, -5.0f, 5.0f);
  const Vec xd = to_double(x);
  auto gelu_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) {
      const double u = std::sqrt(2.0 / std::numbers::pi) * (v[i] + 0.044715 * v[i] * v[i] * v[i]);
      o[i] = 0.5 * v[i] * (1.0 + std::tanh(u));
    }
    return o;
  };
  auto relu_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = v[i] > 0 ? v[i] : 0.0;
    return o;
  };
  const Vec g = to_double(random_floats(n, 62));
  const FVec dout(g.begin(), g.end());
  const FVec d0 = random_floats(n, 63);
  FVec out(n), din = d0;
  cpu::gelu_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, gelu_ref(xd)), kTol);
  cpu::gelu_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, gelu_ref)), kFdTol);
  din = d0;
  cpu::relu_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, relu_ref(xd)), kTol);
  cpu::relu_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, relu_ref)), kFdTol);
}

TEST(Activation, GeluErfAndTanhAgainstReferenceAndFiniteDifferences) {
  const size_t n = 1000 + 37;
  const FVec x = random_floats(n, 66, -5.0f, 5.0f);
  const Vec xd = to_double(x);
  auto gelu_erf_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = 0.5 * v[i] * std::erfc(-v[i] / std::sqrt(2.0));
    return o;
  };
  auto tanh_ref = [](const Vec& v) {
    Vec o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = std::tanh(v[i]);
    return o;
  };
  const Vec g = to_double(random_floats(n, 67));
  const FVec dout(g.begin(), g.end());
  const FVec d0 = random_floats(n, 68);
  FVec out(n), din = d0;
  cpu::gelu_erf_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, gelu_erf_ref(xd)), kTol);
  // Not the tanh approximation: the two differ by up to ~2e-4 near |x| = 2.
  FVec approx(n);
  cpu::gelu_forward(approx.data(), x.data(), n);
  EXPECT_GT(rel_err(approx, gelu_erf_ref(xd)), 1e-5);
  cpu::gelu_erf_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, gelu_erf_ref)), kFdTol);
  din = d0;
  cpu::tanh_forward(out.data(), x.data(), n);
  EXPECT_LT(rel_err(out, tanh_ref(xd)), kTol);
  cpu::tanh_backward(din.data(), x.data(), dout.data(), n);
  EXPECT_LT(rel_err(added(din, d0), fd_grad(xd, g, tanh_ref)), kFdTol);
}

TEST(Activation, GeluIsBitExactAcrossThreadCounts) {
  const size_t n = (size_t{1} << 16) + 5;
  const FVec x = random_floats(n, 64, -5.0f, 5.0f), dout = random_floats(n, 65);
  FVec y1(n), y2(n), d1(n, 0.5f), d2(n, 0.5f);
  with_threads(1, [&] {
    cpu::gelu_forward(y1.data(), x.data(), n);
    cpu::gelu_backward(d1.data(), x.data(), dout.data(), n);
  });
  with_threads(2, [&] {
    cpu::gelu_forward(y2.data(), x.data(), n);
    cpu::gelu_backward(d2.data(), x.data(), dout.data(), n);
  });
  EXPECT_TRUE(bit_equal(y1, y2));
  EXPECT_TRUE(bit_equal(d1, d2));
  FVec e1(n), e2(n), de1(n, 0.5f), de2(n, 0.5f);
  with_threads(1, [&] {
    cpu::gelu_erf_forward(e1.data(), x.data(), n);
    cpu::gelu_erf_backward(de1.data(), x.data(), dout.data(), n);
  });
  with_threads(2, [&] {
    cpu::gelu_erf_forward(e2.data(), x.data(), n);
    cpu::gelu_erf_backward(de2.data(), x.data(), dout.data(), n);
  });
  EXPECT_TRUE(bit_equal(e1, e2));
  EXPECT_TRUE(bit_equal(de1, de2));
}

TEST(Residual, Forward) {
  const size_t n = 101;
  const FVec a = random_floats(n, 71), b = random_floats(n, 72);
  FVec out(n);
  cpu::residual_forward(out.data(), a.data(), b.data(), n);
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(out[i], a[i] + b[i]);
  FVec inplace = a;
  cpu::residual_forward(inplace.data(), inplace.data(), b.data(), n);
  EXPECT_TRUE(bit_equal(inplace, out));
}

// ---------------------------------------------------------------------------------------------
// row gather and scatter-add

TEST(Rows, GatherAndScatterAddAgainstReferenceAndFiniteDifferences) {
  const int R = 9, C = 13;
  const std::vector<int32_t> rows = {7, 0, 3, 8, 4};  // distinct, unordered; rows 1, 2, 5, 6 unused
  const int n = static_cast<int>(rows.size());
  const FVec inp = random_floats(static_cast<size_t>(R) * C, 91);
  auto gather_ref = [&](const Vec& x) {
    Vec o(static_cast<size_t>(n) * C);
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < C; ++c) o[static_cast<size_t>(i) * C + c] = x[rows[i] * C + c];
    }
    return o;
  };
  FVec out(static_cast<size_t>(n) * C, 7.0f);
  cpu::gather_rows(out.data(), inp.data(), rows.data(), n, C);
  const Vec ref = gather_ref(to_double(inp));
  EXPECT_TRUE(bit_equal(out, FVec(ref.begin(), ref.end())));
  // Backward: dinp[rows[i]] += dout[i]; the other rows keep their bits.
  const Vec g = to_double(random_floats(out.size(), 92));
  const FVec dout(g.begin(), g.end());
  const FVec d0 = random_floats(inp.size(), 93);
  FVec dinp = d0;
  cpu::scatter_add_rows(dinp.data(), dout.data(), rows.data(), n, C);
  for (int r = 0; r < R; ++r) {
    const auto it = std::find(rows.begin(), rows.end(), r);
    for (int c = 0; c < C; ++c) {
      const size_t e = static_cast<size_t>(r) * C + c;
      const float want =
          it == rows.end() ? d0[e] : d0[e] + dout[static_cast<size_t>(it - rows.begin()) * C + c];
      ASSERT_EQ(dinp[e], want) << "row " << r << " column " << c;
    }
  }
  EXPECT_LT(rel_err(added(dinp, d0), fd_grad(to_double(inp), g, gather_ref)), kFdTol);
  // Nothing to do for n = 0.
  FVec untouched = d0;
  cpu::scatter_add_rows(untouched.data(), dout.data(), rows.data(), 0, C);
  cpu::gather_rows(out.data(), inp.data(), rows.data(), 0, C);
  EXPECT_TRUE(bit_equal(untouched, d0));
  // A negative index gives a row of zeros (unpacking into a padded layout).
  const std::vector<int32_t> holes = {2, -1, 0, -5};
  FVec unpacked(holes.size() * C, 7.0f);
  cpu::gather_rows(unpacked.data(), inp.data(), holes.data(), 4, C);
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < C; ++c)
      ASSERT_EQ(unpacked[static_cast<size_t>(i) * C + c],
                holes[i] < 0 ? 0.0f : inp[static_cast<size_t>(holes[i]) * C + c])
          << "row " << i;
}

}  // namespace
}  // namespace ph
