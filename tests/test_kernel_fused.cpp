// The fused ops of the backend interface (kernels/backend.h) against the ops they fuse: the CPU
// backend's dropout_residual_forward, layernorm_backward_into and matmul_backward_into give, bit
// for bit, what the Backend defaults (the separate calls, which the CUDA backend runs) give —
// dropout on a plain and on a packed block (DropoutBlock::rows), and p = 0.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "kernels/backend.h"
#include "tests/random_data.h"

namespace ph {
namespace {

using testing::FVec;
using testing::random_floats;

bool same_bits(const FVec& a, const FVec& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(FusedOps, DropoutResidualEqualsDropoutThenResidual) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  const int rows = 7, cols = 300;  // more columns than the 256 of a mask chunk
  const std::vector<int32_t> packed = {0, 1, 3, 4, 5, 8, 9};  // rows kept of a [2 x 5] layout
  for (const float p : {0.0f, 0.25f}) {
    for (const bool pack : {false, true}) {
      const DropoutSpec d{p, 41, 3, 12};
      DropoutBlock blk;
      blk.sample0 = 2;
      blk.T = 5;
      blk.T_max = 6;
      blk.global_cols = cols;
      if (pack) blk.rows = packed.data();
      const FVec a = random_floats(static_cast<size_t>(rows) * cols, 1);
      const FVec b = random_floats(a.size(), 2);
      FVec fused(a.size(), 9.0f), b_fused = b;
      be->dropout_residual_forward(fused.data(), a.data(), b_fused.data(), rows, cols, d, blk);
      FVec twice(a.size(), 9.0f), b_twice = b;
      be->Backend::dropout_residual_forward(twice.data(), a.data(), b_twice.data(), rows, cols, d,
                                            blk);
      EXPECT_TRUE(same_bits(fused, twice)) << "p " << p << " packed " << pack;
      EXPECT_TRUE(same_bits(b_fused, b)) << "the CPU's fused op leaves b alone";
      // Not vacuous: about a quarter of the elements were dropped when p > 0.
      int dropped = 0;
      for (size_t i = 0; i < a.size(); ++i) dropped += fused[i] == a[i];
      if (p > 0)
        EXPECT_GT(dropped, 300);
      else
        EXPECT_EQ(dropped, 0);
      // In place: out aliases a.
      FVec inplace = a, b_inplace = b;
      be->dropout_residual_forward(inplace.data(), inplace.data(), b_inplace.data(), rows, cols, d,
                                   blk);
      EXPECT_TRUE(same_bits(inplace, twice));
    }
  }
}

TEST(FusedOps, LayerNormBackwardIntoEqualsZeroThenAccumulate) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  const int N = 9, C = 70;
  const FVec x = random_floats(static_cast<size_t>(N) * C, 3), w = random_floats(C, 4);
  const FVec bias = random_floats(C, 5), dy = random_floats(x.size(), 6);
  FVec out(x.size()), mean(N), rstd(N);
  be->layernorm_forward(out.data(), mean.data(), rstd.data(), x.data(), w.data(), bias.data(), N, C,
                        1e-5f);
  FVec dx1(x.size(), 7.0f), dw1(C, 0.5f), db1(C, 0.25f);
  be->layernorm_backward_into(dx1.data(), dw1.data(), db1.data(), dy.data(), x.data(), w.data(),
                              mean.data(), rstd.data(), N, C);
  FVec dx2(x.size(), 7.0f), dw2(C, 0.5f), db2(C, 0.25f);
  be->Backend::layernorm_backward_into(dx2.data(), dw2.data(), db2.data(), dy.data(), x.data(),
                                       w.data(), mean.data(), rstd.data(), N, C);
  EXPECT_TRUE(same_bits(dx1, dx2));
  EXPECT_TRUE(same_bits(dw1, dw2));
  EXPECT_TRUE(same_bits(db1, db2));
  EXPECT_NE(dw1[0], 0.5f);  // the parameter gradients accumulated onto what was there
}

TEST(FusedOps, MatmulBackwardIntoEqualsZeroThenAccumulate) {
  const std::unique_ptr<Backend> be = make_cpu_backend();
  const int N = 600, IC = 40, OC = 24;  // more rows than one block of 256
  const FVec x = random_floats(static_cast<size_t>(N) * IC, 8);
  const FVec w = random_floats(static_cast<size_t>(OC) * IC, 9);
  const FVec dy = random_floats(static_cast<size_t>(N) * OC, 10);
  FVec dx1(x.size(), 3.0f), dw1(w.size(), 0.5f), db1(OC, 0.25f);
  be->matmul_backward_into(dx1.data(), dw1.data(), db1.data(), dy.data(), x.data(), w.data(), N, IC,
                           OC);
  FVec dx2(x.size(), 3.0f), dw2(w.size(), 0.5f), db2(OC, 0.25f);
  be->Backend::matmul_backward_into(dx2.data(), dw2.data(), db2.data(), dy.data(), x.data(),
                                    w.data(), N, IC, OC);
  EXPECT_TRUE(same_bits(dx1, dx2));
  EXPECT_TRUE(same_bits(dw1, dw2));
  EXPECT_TRUE(same_bits(db1, db2));
  // Not vacuous: dx was overwritten, not added to the 3.0 that was there.
  FVec acc(x.size(), 3.0f), dw3(w.size(), 0.5f), db3(OC, 0.25f);
  be->matmul_backward(acc.data(), dw3.data(), db3.data(), dy.data(), x.data(), w.data(), N, IC, OC);
  EXPECT_NE(acc[0], dx1[0]);
  EXPECT_FLOAT_EQ(acc[0], dx1[0] + 3.0f);
}

}  // namespace
}  // namespace ph
