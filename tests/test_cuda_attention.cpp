// The CUDA attention (kernels/cuda/attention_kernels.cuh) against the CPU backend: the very
// sequence the .cu file runs (impl::attention_forward / backward) with its row kernels compiled
// for the host and run through tests/cuda_shim.h, and its cuBLAS plans run by the reference of
// cuBLAS's semantics (tests/cuda_gemm_reference.h), on small shapes: fused self-attention and
// cross-attention on separate q and kv buffers (Tq < Tk and Tq > Tk, rows wider than the
// data), causal (aligned at the end) and bidirectional, per-sample key lengths (a sample with
// none), dropout. The dropout masks must be the CPU's bit for bit, masked probabilities and
// the gradients of padded keys exactly zero; values agree to float rounding (the GEMMs and the
// softmax add in other orders, and the CPU uses its own exp).
#include "tests/cuda_shim.h"  // first: the kernel headers compile against it

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "kernels/common/attention_args.h"
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

bool same_bits(float a, float b) {
  return std::memcmp(&a, &b, sizeof(float)) == 0;
}

constexpr double kTol = 2e-5;

struct AttentionCase : test::AttentionShape {
  cuda::AttentionRows rows() const { return cuda::attention_rows(dims(), coords); }
  std::string name() const {
    return "B " + std::to_string(B) + " Tq " + std::to_string(Tq) + " Tk " + std::to_string(Tk) +
           " C " + std::to_string(C) + " H " + std::to_string(H) + (fused ? " fused" : " cross") +
           (causal ? " causal" : "") + (key_len.empty() ? "" : " key lengths") +
           (q_len.empty() ? "" : " query lengths") + (q_rows.empty() ? "" : " selected rows") +
           (drop.p > 0 ? " dropout" : "");
  }
};

AttentionCase cross(int Tq, int Tk) {
  AttentionCase a;
  a.fused = false;
  a.Tq = Tq;
  a.Tk = Tk;
  a.q_pad = 2;
  a.kv_pad = 3;
  return a;
}

struct Result {
  FVec out, att, dropped, dx;
};

// The CUDA driver through the shim; outputs the call must overwrite start as NaN.
Result run_cuda(const AttentionCase& a, FVec& x, FVec& dout, const FVec& dx0, LaunchShape shape) {
  const bool dropout = a.drop.p > 0.0f;
  Result r{FVec(a.out_size(), NAN), FVec(a.att_size(), NAN), FVec(a.att_size(), NAN), dx0};
  FVec datt(a.att_size(), NAN);
  const ReferenceGemm gemm({&x, &dout, &r.out, &r.att, &r.dropped, &r.dx, &datt});
  const size_t kv = a.kv_offset();
  cuda::impl::attention_forward(gemm, gpu, r.out.data(), r.att.data(),
                                dropout ? r.dropped.data() : nullptr, x.data(), x.data() + kv,
                                a.rows(), a.drop, shape);
  cuda::impl::attention_backward(gemm, gpu, r.dx.data(), r.dx.data() + kv, datt.data(), dout.data(),
                                 x.data(), x.data() + kv, r.att.data(), a.rows(), a.drop, shape);
  return r;
}

// CPU backend, then the CUDA driver, from the same inputs.
void check_attention(const AttentionCase& a, LaunchShape shape) {
  const std::string what = a.name() + ", shape {" + std::to_string(shape.threads) + ", " +
                           std::to_string(shape.max_blocks) + "}";
  SCOPED_TRACE(what);
  FVec x = random_floats(a.x_size(), 41, -1.5f, 1.5f);
  FVec dout = random_floats(a.out_size(), 42);
  const FVec dx0 = random_floats(a.x_size(), 43);
  const bool dropout = a.drop.p > 0.0f;
  const size_t kv = a.kv_offset();

  Result cpu_r{FVec(a.out_size()), FVec(a.att_size()), {}, dx0};
  FVec cpu_datt(a.att_size());
  cpu::attention_forward(cpu_r.out.data(), cpu_r.att.data(), x.data(), x.data() + kv, a.dims(),
                         a.drop, a.coords);
  cpu::attention_backward(cpu_r.dx.data(), cpu_r.dx.data() + kv, cpu_datt.data(), dout.data(),
                          x.data(), x.data() + kv, cpu_r.att.data(), a.dims(), a.drop, a.coords);

  const Result r = run_cuda(a, x, dout, dx0, shape);
  EXPECT_LT(rel_err(r.att, cpu_r.att), kTol) << "probabilities";
  EXPECT_LT(rel_err(r.out, cpu_r.out), kTol) << "out";
  EXPECT_LT(rel_err(r.dx, cpu_r.dx), kTol) << "dq, dkv (accumulated)";
  // Masked probabilities are exactly 0, rows without keys output exactly 0, and with dropout
  // the dropped-out probabilities are those of the CPU's mask applied to att, bit for bit.
  const float keep = dropout_scale(a.drop.p);
  for (int b = 0; b < a.B; ++b) {
    for (int h = 0; h < a.H; ++h) {
      for (int i = 0; i < a.Tq; ++i) {
        bool any = false;
        for (int j = 0; j < a.Tk; ++j) {
          const size_t e = a.att_index(b, h, i, j);
          if (a.visible(b, i, j)) {
            any = true;
          } else {
            ASSERT_EQ(r.att[e], 0.0f) << "masked " << e;
          }
          if (!dropout) continue;
          const float want =
              dropout_keep(a.drop, a.drop_index(b, h, i, j)) ? r.att[e] * keep : 0.0f;
          ASSERT_TRUE(same_bits(r.dropped[e], want)) << "dropped-out probability " << e;
        }
        if (any) continue;
        for (int d = 0; d < a.hs(); ++d) {
          ASSERT_EQ(r.out[a.out_index(b, i, h, d)], 0.0f) << "row without keys " << b << h << i;
        }
      }
      // Padded keys: no gradient at all (dk and dv keep their bits).
      for (int j = 0; j < a.Tk; ++j) {
        if (!a.padded_key(b, j)) continue;
        for (int d = 0; d < a.hs(); ++d) {
          const size_t k = a.k_index(b, j, h, d), v = a.v_index(b, j, h, d);
          ASSERT_TRUE(same_bits(r.dx[k], dx0[k]) && same_bits(r.dx[v], dx0[v]))
              << "dk, dv of padded key " << j << " of sample " << b;
        }
      }
    }
  }
  const std::vector<bool> used = a.used();
  for (size_t e = 0; e < used.size(); ++e) {
    if (!used[e]) {
      ASSERT_TRUE(same_bits(r.dx[e], dx0[e])) << "pad column " << e;
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
  a.Tq = a.Tk = 6;
  a.C = 10;
  a.H = 2;
  a.key_len = {6, 1, 4, 0, 5};
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

// Query lengths (a packed pass's padding rows): the rows past them output zeros and pass no
// gradient, as on the CPU.
TEST(CudaAttention, QueryLengths) {
  AttentionCase a;
  a.B = 3;
  a.q_len = {3, 5, 0};
  for (const LaunchShape s : kShapes) check_attention(a, s);
  a.causal = false;
  a.key_len = {3, 4, 2};
  a.drop = DropoutSpec{0.3f, 21, 4, 6};
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

// Selected query rows (BERT's last layer): the others output zeros and pass no gradient, as
// on the CPU, which computes the selected rows alone.
TEST(CudaAttention, SelectedQueryRows) {
  AttentionCase a;
  a.B = 3;
  a.causal = false;
  a.key_len = {4, 5, 2};
  a.q_rows = {0, -1, 1, -1, 2, -1, -1, -1, -1, -1, 3, 4, 5, 6, 7};
  for (const LaunchShape s : kShapes) check_attention(a, s);
  a.drop = DropoutSpec{0.3f, 21, 4, 6};
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

TEST(CudaAttention, KeyLengthsWithAnEmptySample) {
  AttentionCase a;
  a.key_len = {3, 0};  // sample 1 has no key: every row of it outputs zeros
  for (const LaunchShape s : kShapes) check_attention(a, s);
  a.causal = false;  // bidirectional self-attention with per-sample lengths
  a.key_len = {2, 5};
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

TEST(CudaAttention, CrossFewerQueriesThanKeys) {
  AttentionCase a = cross(3, 6);
  a.causal = false;
  a.key_len = {6, 4};
  for (const LaunchShape s : kShapes) check_attention(a, s);
  a.causal = true;  // query i sees keys j <= i + 3
  a.drop = DropoutSpec{0.25f, 11, 2, 7};
  a.coords.Tq_max = 4;
  a.coords.Tk_max = 9;
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

TEST(CudaAttention, CrossMoreQueriesThanKeys) {
  AttentionCase a = cross(6, 4);
  a.causal = false;
  a.key_len = {3, 0};
  for (const LaunchShape s : kShapes) check_attention(a, s);
  a.causal = true;  // query i sees keys j <= i - 2: queries 0 and 1 see nothing
  a.key_len = {4, 2};
  a.drop = DropoutSpec{0.4f, 12, 3, 8};
  a.coords.sample0 = 5;
  for (const LaunchShape s : kShapes) check_attention(a, s);
}

TEST(CudaAttention, NoKeysAtAll) {
  AttentionCase a = cross(3, 0);
  a.causal = false;
  a.drop = DropoutSpec{0.25f, 5, 1, 2};
  FVec x = random_floats(a.x_size(), 44), dout = random_floats(a.out_size(), 45);
  const Result r = run_cuda(a, x, dout, x, kOneWarpThreeBlocks);
  for (const float v : r.out) ASSERT_EQ(v, 0.0f);
  for (size_t e = 0; e < x.size(); ++e) ASSERT_TRUE(same_bits(r.dx[e], x[e]));
}

TEST(CudaAttention, DropoutMasksAreTheCpuMasks) {
  AttentionCase a;
  a.drop = DropoutSpec{0.3f, 77, 5, 9};
  a.coords.sample0 = 3;
  a.coords.head0 = 1;
  a.coords.H_total = 5;
  for (const LaunchShape s : kShapes) check_attention(a, s);
  a.causal = false;
  a.key_len = {5, 3};
  for (const LaunchShape s : kShapes) check_attention(a, s);
  // Samples batched, a dropout index above 2^32.
  a.B = 5;
  a.C = 10;
  a.H = 2;
  a.key_len.clear();
  a.coords.sample0 = int64_t{1} << 30;
  check_attention(a, kOneWarpThreeBlocks);
}

// Calls covering the first Tq queries and Tk keys of each sample (a micro-batch padded to less
// than the configured maximum lengths) draw the bits of the full-length call.
TEST(CudaAttention, DropoutMaskDoesNotDependOnTheMicroBatchLength) {
  for (const bool self : {true, false}) {
    AttentionCase full = self ? AttentionCase{} : cross(5, 7);
    full.B = 3;
    if (self) full.Tq = full.Tk = 7;
    full.causal = self;
    full.drop = DropoutSpec{0.5f, 31, 4, 5};
    full.coords.sample0 = 2;
    FVec x = random_floats(full.x_size(), 46), dout = random_floats(full.out_size(), 47);
    const Result f = run_cuda(full, x, dout, FVec(full.x_size(), 0.0f), kOneWarpThreeBlocks);
    AttentionCase part = full;
    part.Tq = self ? 4 : 3;
    part.Tk = 4;
    part.coords.Tq_max = full.Tq;
    part.coords.Tk_max = full.Tk;
    FVec px = random_floats(part.x_size(), 48), pdout = random_floats(part.out_size(), 49);
    const Result p = run_cuda(part, px, pdout, FVec(part.x_size(), 0.0f), kOneWarpThreeBlocks);
    int kept = 0, dropped = 0;
    for (int b = 0; b < full.B; ++b) {
      for (int h = 0; h < full.H; ++h) {
        for (int i = 0; i < part.Tq; ++i) {
          for (int j = 0; j < part.Tk; ++j) {
            if (!part.visible(b, i, j)) continue;
            ASSERT_TRUE(full.visible(b, i, j));
            const bool in_part = p.dropped[part.att_index(b, h, i, j)] != 0.0f;
            const bool in_full = f.dropped[full.att_index(b, h, i, j)] != 0.0f;
            ASSERT_EQ(in_part, in_full) << (self ? "self " : "cross ") << b << h << i << j;
            (in_part ? kept : dropped)++;
          }
        }
      }
    }
    EXPECT_GT(kept, 10);
    EXPECT_GT(dropped, 10);
  }
}

TEST(CudaAttention, ZeroDropoutEqualsNoDropout) {
  AttentionCase a;
  a.key_len = {4, 5};
  FVec x = random_floats(a.x_size(), 45);
  FVec out0(a.out_size()), att0(a.att_size()), out1(a.out_size()), att1(a.att_size());
  FVec dropped(a.att_size());
  const ReferenceGemm gemm({&x, &out0, &att0, &out1, &att1, &dropped});
  const float* q = x.data();
  const float* kv = x.data() + a.kv_offset();
  cuda::impl::attention_forward(gemm, gpu, out0.data(), att0.data(), nullptr, q, kv, a.rows(),
                                a.drop);
  a.drop.seed = 3;  // a configured site with p = 0: no scratch needed
  cuda::impl::attention_forward(gemm, gpu, out1.data(), att1.data(), nullptr, q, kv, a.rows(),
                                a.drop);
  EXPECT_EQ(out0, out1);
  EXPECT_EQ(att0, att1);
  a.drop.p = 1e-9f;  // the dropout path, dropping nothing here
  cuda::impl::attention_forward(gemm, gpu, out1.data(), att1.data(), dropped.data(), q, kv,
                                a.rows(), a.drop);
  EXPECT_LT(rel_err(out1, out0), 1e-6);
  EXPECT_EQ(att0, att1);
}

TEST(CudaAttention, LongRowsAcrossWarps) {
  // Tk = 150: a row spans 39 dropout groups, two warps of one block or one warp looping.
  AttentionCase a;
  a.B = 1;
  a.Tq = a.Tk = 150;
  a.C = 8;
  a.H = 2;
  a.drop = DropoutSpec{0.2f, 8, 2, 4};
  a.key_len = {131};
  check_attention(a, kTwoWarpsFiveBlocks);
  a.causal = false;
  check_attention(a, kOneWarpThreeBlocks);
  AttentionCase c = cross(20, 150);
  c.B = 2;
  c.C = 8;
  c.H = 2;
  c.key_len = {150, 67};
  c.drop = a.drop;
  check_attention(c, kTwoWarpsFiveBlocks);
}

TEST(CudaAttention, RowsOfACall) {
  // The row index math: row r = (b * H + h) * Tq + i, its visible keys and dropout index.
  AttentionCase a = cross(3, 5);
  a.B = 2;
  a.H = 3;
  a.causal = true;
  a.key_len = {5, 3};
  a.coords = AttentionCoords{7, 2, 8, 4, 6};
  const cuda::AttentionRows rows = a.rows();
  EXPECT_EQ(cuda::attention_row_count(rows), size_t{18});
  const cuda::AttentionRow row = cuda::attention_row(rows, (1 * 3 + 2) * 3 + 1);
  EXPECT_EQ(row.b, 1);
  EXPECT_EQ(row.h, 2);
  EXPECT_EQ(row.i, 1);
  EXPECT_EQ(row.n, 3);  // causal would allow 1 + 2 + 1 = 4 keys, the length 3
  EXPECT_EQ(row.drop0, a.drop_index(1, 2, 1, 0));
  EXPECT_EQ(row.drop0, ((8ull * 8 + 2 + 2) * 4 + 1) * 6);
}

}  // namespace
}  // namespace ph
