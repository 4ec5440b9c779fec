// The CUDA attention (kernels/cuda/attention_kernels.cuh) against the CPU backend: the very
// sequence the .cu file runs (impl::attention_forward / backward) with its row kernels compiled
// for the host and run through tests/cuda_shim.h, and its cuBLAS plans run by the reference of
// cuBLAS's semantics (tests/cuda_gemm_reference.h), on small shapes with causal and key-padding
// masks and dropout. The dropout masks must be the CPU's bit for bit; values agree to float
// rounding (the GEMMs and the softmax add in other orders, and the CPU uses its own exp).
#include "tests/cuda_shim.h"  // first: the kernel headers compile against it

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/common/dropout_mask.h"
#include "kernels/cpu/attention.h"
#include "kernels/cuda/attention_kernels.cuh"
#include "kernels/cuda/gemm_plan.h"
#include "tests/attention_case.h"
#include "tests/cuda_gemm_reference.h"

#include "tests/random_data.h"

namespace ph {
namespace {

using cuda::LaunchShape;
using testing::FVec;

const shim::Launcher gpu;

// One warp per row looping over the groups of a long row, and grids of fewer blocks than rows.
constexpr LaunchShape kOneWarpThreeBlocks{32, 3};
constexpr LaunchShape kTwoWarpsFiveBlocks{64, 5};

using testing::random_floats;
using testing::ReferenceGemm;

// max |got - ref| / max(1, max |ref|); NaN anywhere in got counts as infinitely wrong.
double rel_err(const FVec& got, const FVec& ref) {
  EXPECT_EQ(got.size(), ref.size());
  double num = 0.0, den = 1.0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = std::fabs(static_cast<double>(got[i]) - ref[i]);
    num = std::isnan(d) ? INFINITY : std::max(num, d);
    den = std::max(den, std::fabs(static_cast<double>(ref[i])));
  }
  return num / den;
}

constexpr double kTol = 2e-5;

struct AttentionCase : test::AttentionShape {
  cuda::AttentionRows rows() const {
    return cuda::attention_rows(B, T, H, causal, mask(), static_cast<long long>(coords.sample0),
                                coords.head0, coords.H_total);
  }
  std::string name() const {
    return "B " + std::to_string(B) + " T " + std::to_string(T) + " C " + std::to_string(C) +
           " H " + std::to_string(H) + (causal ? " causal" : "") +
           (key_mask.empty() ? "" : " padded") + (drop.p > 0 ? " dropout" : "");
  }
};

struct Result {
  FVec out, att, dropped, dqkv;
};

// CPU backend, then the CUDA driver through the shim, from the same inputs; outputs that the
// call must overwrite start as NaN.
void check_attention(const AttentionCase& a, LaunchShape shape) {
  const std::string what = a.name() + ", shape {" + std::to_string(shape.threads) + ", " +
                           std::to_string(shape.max_blocks) + "}";
  SCOPED_TRACE(what);
  FVec qkv = random_floats(a.qkv_size(), 41, -1.5f, 1.5f);
  FVec dout = random_floats(a.out_size(), 42);
  const FVec dqkv0 = random_floats(a.qkv_size(), 43);
  const bool dropout = a.drop.p > 0.0f;

  Result cpu_r{FVec(a.out_size()), FVec(a.att_size()), {}, dqkv0};
  FVec cpu_datt(a.att_size());
  cpu::attention_forward(cpu_r.out.data(), cpu_r.att.data(), qkv.data(), a.mask(), a.B, a.T, a.C,
                         a.H, a.causal, a.drop, a.coords);
  cpu::attention_backward(cpu_r.dqkv.data(), cpu_datt.data(), dout.data(), qkv.data(),
                          cpu_r.att.data(), a.mask(), a.B, a.T, a.C, a.H, a.causal, a.drop,
                          a.coords);

  Result r{FVec(a.out_size(), NAN), FVec(a.att_size(), NAN), FVec(a.att_size(), NAN), dqkv0};
  FVec datt(a.att_size(), NAN);
  const ReferenceGemm gemm({&qkv, &dout, &r.out, &r.att, &r.dropped, &r.dqkv, &datt});
  cuda::impl::attention_forward(gemm, gpu, r.out.data(), r.att.data(),
                                dropout ? r.dropped.data() : nullptr, qkv.data(), a.C, a.rows(),
                                a.drop, shape);
  cuda::impl::attention_backward(gemm, gpu, r.dqkv.data(), datt.data(), dout.data(), qkv.data(),
                                 r.att.data(), a.C, a.rows(), a.drop, shape);

  EXPECT_LT(rel_err(r.att, cpu_r.att), kTol) << "probabilities";
  EXPECT_LT(rel_err(r.out, cpu_r.out), kTol) << "out";
  EXPECT_LT(rel_err(r.dqkv, cpu_r.dqkv), kTol) << "dqkv (accumulated)";
  // Masked probabilities are exactly 0, and with dropout the dropped-out probabilities are
  // those of the CPU's mask applied to att, bit for bit.
  const float keep = dropout_scale(a.drop.p);
  for (int b = 0; b < a.B; ++b) {
    for (int h = 0; h < a.H; ++h) {
      for (int i = 0; i < a.T; ++i) {
        for (int j = 0; j < a.T; ++j) {
          const size_t e = ((static_cast<size_t>(b) * a.H + h) * a.T + i) * a.T + j;
          if (!a.visible(b, i, j)) {
            ASSERT_EQ(r.att[e], 0.0f) << "masked " << e;
          }
          if (!dropout) continue;
          const float want =
              dropout_keep(a.drop, a.drop_index(b, h, i, j)) ? r.att[e] * keep : 0.0f;
          ASSERT_EQ(r.dropped[e], want) << "dropped-out probability " << e;
        }
      }
    }
  }
}

const LaunchShape kShapes[] = {cuda::kAttentionRowShape, kOneWarpThreeBlocks};

TEST(CudaAttention, Causal) {
  const AttentionCase a;  // H > B: the plans batch the heads of each sample
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

TEST(CudaAttention, NotCausal) {
  AttentionCase a;
  a.causal = false;
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

TEST(CudaAttention, MoreSamplesThanHeads) {
  AttentionCase a;  // B > H: the plans batch the samples of each head
  a.B = 5;
  a.T = 6;
  a.C = 10;
  a.H = 2;
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

TEST(CudaAttention, KeyPaddingMaskWithFullyMaskedRows) {
  AttentionCase a;
  // Sample 0: keys 0 and 1 are padding, so causal rows 0 and 1 see nothing. Sample 1: key 3.
  a.key_mask = {0, 0, 1, 1, 1, 1, 1, 1, 0, 1};
  for (const LaunchShape s : kShapes) check_attention(a, s);
  // Not causal, every key of sample 1 padded: all of its rows see nothing.
  a.causal = false;
  a.key_mask = {1, 0, 1, 1, 0, 0, 0, 0, 0, 0};
  check_attention(a, kOneWarpThreeBlocks);
}

TEST(CudaAttention, FullyMaskedRowsOutputZeros) {
  AttentionCase a;
  a.key_mask = {0, 0, 1, 1, 1, 1, 1, 1, 0, 1};
  a.drop = DropoutSpec{0.25f, 5, 1, 2};
  FVec qkv = random_floats(a.qkv_size(), 44);
  FVec out(a.out_size(), NAN), att(a.att_size(), NAN), dropped(a.att_size(), NAN);
  const ReferenceGemm gemm({&qkv, &out, &att, &dropped});
  cuda::impl::attention_forward(gemm, gpu, out.data(), att.data(), dropped.data(), qkv.data(), a.C,
                                a.rows(), a.drop);
  for (int h = 0; h < a.H; ++h) {
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < a.T; ++j) {
        EXPECT_EQ(att[(h * a.T + i) * a.T + j], 0.0f);
        EXPECT_EQ(dropped[(h * a.T + i) * a.T + j], 0.0f);
      }
    }
  }
  for (int i = 0; i < 2; ++i) {
    for (int c = 0; c < a.C; ++c) EXPECT_EQ(out[i * a.C + c], 0.0f);
  }
}

TEST(CudaAttention, DropoutMasksAreTheCpuMasks) {
  AttentionCase a;
  a.drop = DropoutSpec{0.3f, 77, 5, 9};
  a.coords.sample0 = 3;
  a.coords.head0 = 1;
  a.coords.H_total = 5;
  for (const LaunchShape s : kShapes) check_attention(a, s);
  a.causal = false;
  a.key_mask = {1, 1, 0, 1, 1, 1, 1, 1, 1, 1};
  for (const LaunchShape s : kShapes) check_attention(a, s);
  // Samples batched, a dropout index above 2^32.
  a.B = 5;
  a.C = 10;
  a.H = 2;
  a.key_mask.clear();
  a.coords.sample0 = int64_t{1} << 30;
  check_attention(a, kOneWarpThreeBlocks);
}

TEST(CudaAttention, ZeroDropoutEqualsNoDropout) {
  AttentionCase a;
  FVec qkv = random_floats(a.qkv_size(), 45);
  FVec out0(a.out_size()), att0(a.att_size()), out1(a.out_size()), att1(a.att_size());
  FVec dropped(a.att_size());
  const ReferenceGemm gemm({&qkv, &out0, &att0, &out1, &att1, &dropped});
  cuda::impl::attention_forward(gemm, gpu, out0.data(), att0.data(), nullptr, qkv.data(), a.C,
                                a.rows(), a.drop);
  a.drop.seed = 3;  // a configured site with p = 0: no scratch needed
  cuda::impl::attention_forward(gemm, gpu, out1.data(), att1.data(), nullptr, qkv.data(), a.C,
                                a.rows(), a.drop);
  EXPECT_EQ(out0, out1);
  EXPECT_EQ(att0, att1);
  a.drop.p = 1e-9f;  // the dropout path, dropping nothing here
  cuda::impl::attention_forward(gemm, gpu, out1.data(), att1.data(), dropped.data(), qkv.data(),
                                a.C, a.rows(), a.drop);
  EXPECT_LT(rel_err(out1, out0), 1e-6);
  EXPECT_EQ(att0, att1);
}

TEST(CudaAttention, LongRowsAcrossWarps) {
  // T = 150: a row spans 39 dropout groups, two warps of one block or one warp looping.
  AttentionCase a;
  a.B = 1;
  a.T = 150;
  a.C = 8;
  a.H = 2;
  a.drop = DropoutSpec{0.2f, 8, 2, 4};
  check_attention(a, kTwoWarpsFiveBlocks);
  a.causal = false;
  check_attention(a, kOneWarpThreeBlocks);
}

}  // namespace
}  // namespace ph
