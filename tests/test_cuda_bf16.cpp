// The CUDA backend's bf16 mode on the host: the fp32 → bf16 conversion kernel
// (kernels/cuda/bf16_kernels.cuh) through tests/cuda_shim.h against round_bf16, and the linear
// layer as matmul.cu issues it in bf16 mode (impl::matmul_* with OperandsToBf16: conversions
// into the two operand buffers, then the GEMM plans on them) with cuBLAS replaced by the
// reference of its semantics on the bf16 values, against the CPU backend in bf16 mode.
#include "tests/cuda_shim.h"  // first: the kernel headers compile against it

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "kernels/backend.h"
#include "kernels/common/bf16.h"
#include "kernels/cuda/matmul_kernels.cuh"
#include "tests/compare_floats.h"
#include "tests/cuda_gemm_reference.h"
#include "tests/random_data.h"

namespace ph {
namespace {

using testing::expect_close;
using testing::FVec;
using testing::random_floats;

const shim::Launcher gpu;

using Bits = std::vector<uint16_t>;
constexpr uint16_t kGuard = 0xdead;  // fills the elements past a buffer's end
constexpr size_t kGuardCount = 40;

// A buffer of n bf16 values followed by guard elements that nothing may write.
Bits guarded(size_t n) {
  return Bits(n + kGuardCount, kGuard);
}
bool guard_intact(const Bits& b) {
  for (size_t i = b.size() - kGuardCount; i < b.size(); ++i) {
    if (b[i] != kGuard) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// the conversion kernel

// Random floats of every magnitude, with the special values among them.
FVec conversion_input(size_t n) {
  FVec x = random_floats(n, 1, -3.0f, 3.0f);
  const float specials[] = {0.0f,
                            -0.0f,
                            INFINITY,
                            -INFINITY,
                            NAN,
                            std::bit_cast<float>(0x7f800001u),  // NaN, payload in the low bits
                            std::numeric_limits<float>::max(),
                            std::numeric_limits<float>::denorm_min(),
                            std::ldexp(3.0f, -134),
                            1.0f + std::ldexp(1.0f, -8),  // a tie
                            std::ldexp(1.0f, 100) * 1.2345f};
  for (size_t i = 0; i < n; ++i) {
    if (i % 7 == 3) x[i] = specials[(i / 7) % std::size(specials)];
    if (i % 7 == 5) x[i] *= std::ldexp(1.0f, static_cast<int>(i % 61) - 30);
  }
  return x;
}

TEST(CudaBf16, ConversionKernelRoundsLikeTheCpu) {
  // Production shape (256 threads, a grid of up to 65536 blocks), one warp over one or two
  // blocks and three warps over two blocks (the grid-stride loop takes several turns); sizes
  // below, across and between multiples of the blocks.
  const cuda::LaunchShape shapes[] = {cuda::kToBf16Shape, {32, 1}, {32, 2}, {96, 2}};
  for (const cuda::LaunchShape s : shapes) {
    for (const size_t n : {size_t{1}, size_t{31}, size_t{255}, size_t{257}, size_t{600}}) {
      const FVec x = conversion_input(n);
      Bits out = guarded(n);
      cuda::impl::to_bf16(gpu, out.data(), x.data(), n, s);
      const std::string what = "shape {" + std::to_string(s.threads) + ", " +
                               std::to_string(s.max_blocks) + "}, n " + std::to_string(n);
      for (size_t i = 0; i < n; ++i) {
        const float want = round_bf16(x[i]);
        ASSERT_EQ(std::bit_cast<uint32_t>(bf16_to_float(out[i])), std::bit_cast<uint32_t>(want))
            << what << ", element " << i << " (" << x[i] << ")";
      }
      EXPECT_TRUE(guard_intact(out)) << what;
    }
  }
}

TEST(CudaBf16, ConversionOfNothingLaunchesNothing) {
  Bits out = guarded(0);
  cuda::impl::to_bf16(gpu, out.data(), nullptr, 0);
  EXPECT_TRUE(guard_intact(out));
}

// ---------------------------------------------------------------------------------------------
// the linear layer in bf16 mode

TEST(CudaBf16, BufferSizesCoverForwardAndBackward) {
  // N 6, IC 4, OC 3: a holds w (12) or inp (24), b inp (24) or dout (18).
  const cuda::Bf16BufferSizes s = cuda::matmul_bf16_buffer_sizes(6, 4, 3);
  EXPECT_EQ(s.a, 24u);
  EXPECT_EQ(s.b, 24u);
  const cuda::Bf16BufferSizes head = cuda::matmul_bf16_buffer_sizes(2, 4, 50);  // an LM head
  EXPECT_EQ(head.a, 200u);
  EXPECT_EQ(head.b, 100u);
}

// cuBLAS's bf16 x bf16 -> fp32 GEMM on the host: the operands must be the two bf16 buffers (A
// in a, B in b); their values, widened to floats, go through the fp32 reference
// (tests/cuda_gemm_reference.h: products exact, summed in double). C is one of `outputs`.
class Bf16ReferenceGemm {
 public:
  Bf16ReferenceGemm(const Bits& a, const Bits& b, std::vector<FVec*> outputs)
      : a_(a), b_(b), outputs_(std::move(outputs)) {}

  void operator()(const cuda::GemmPlan& plan, const uint16_t* A, const uint16_t* B,
                  float* C) const {
    EXPECT_EQ(A, a_.data()) << "A is not the bf16 buffer a";
    EXPECT_EQ(B, b_.data()) << "B is not the bf16 buffer b";
    FVec wide_a = widen(a_), wide_b = widen(b_);
    std::vector<FVec*> buffers = outputs_;
    buffers.push_back(&wide_a);
    buffers.push_back(&wide_b);
    const testing::ReferenceGemm reference(buffers);
    reference(plan, wide_a.data(), wide_b.data(), C);
  }

 private:
  // The buffer without its guard, as floats.
  static FVec widen(const Bits& bits) {
    FVec v(bits.size() - kGuardCount);
    for (size_t i = 0; i < v.size(); ++i) v[i] = bf16_to_float(bits[i]);
    return v;
  }

  const Bits& a_;
  const Bits& b_;
  std::vector<FVec*> outputs_;
};

// Products of the same bf16 values summed in fp32 (CPU sgemm) and in double (reference): equal
// to rounding of the sums. Without the conversions (fp32 operands) the results would be ~1e-3
// away.
constexpr double kTol = 1e-5;

TEST(CudaBf16, LinearLayerMatchesTheCpuBackendInBf16) {
  struct Shape {
    int N, IC, OC;
  };
  const auto cpu_bf16 = make_cpu_backend(GemmPrecision::Bf16);
  // One element; w larger than inp (a holds w, then a smaller inp); inp larger than w and
  // dout larger than inp.
  for (const Shape sh : {Shape{1, 1, 1}, Shape{7, 19, 33}, Shape{70, 19, 5}, Shape{40, 9, 30}}) {
    const auto [N, IC, OC] = sh;
    const std::string what =
        "N " + std::to_string(N) + ", IC " + std::to_string(IC) + ", OC " + std::to_string(OC);
    const FVec inp = random_floats(static_cast<size_t>(N) * IC, 11);
    const FVec w = random_floats(static_cast<size_t>(OC) * IC, 12);
    const FVec bias = random_floats(static_cast<size_t>(OC), 13);
    const FVec dout = random_floats(static_cast<size_t>(N) * OC, 14);
    const FVec dinp0 = random_floats(inp.size(), 15), dw0 = random_floats(w.size(), 16);
    const FVec dbias0 = random_floats(bias.size(), 17);

    const cuda::Bf16BufferSizes sizes = cuda::matmul_bf16_buffer_sizes(N, IC, OC);
    Bits a = guarded(sizes.a), b = guarded(sizes.b);
    const cuda::impl::OperandsToBf16<shim::Launcher> ops{gpu, {a.data(), b.data()}};
    FVec out(static_cast<size_t>(N) * OC, NAN), dinp = dinp0, dw = dw0, dbias = dbias0;
    const Bf16ReferenceGemm gemm(a, b, {&out, &dinp, &dw});
    cuda::impl::matmul_forward(gemm, gpu, out.data(), inp.data(), w.data(), bias.data(), N, IC, OC,
                               cuda::kBiasAddShape, ops);
    cuda::impl::matmul_backward(gemm, gpu, dinp.data(), dw.data(), dbias.data(), dout.data(),
                                inp.data(), w.data(), N, IC, OC, cuda::kBiasSumShape, ops);
    EXPECT_TRUE(guard_intact(a) && guard_intact(b)) << what;

    FVec ref(out.size()), rdinp = dinp0, rdw = dw0, rdbias = dbias0;
    cpu_bf16->reserve_linear(N, IC, OC);
    cpu_bf16->matmul_forward(ref.data(), inp.data(), w.data(), bias.data(), N, IC, OC);
    cpu_bf16->matmul_backward(rdinp.data(), rdw.data(), rdbias.data(), dout.data(), inp.data(),
                              w.data(), N, IC, OC);
    expect_close(out, ref, kTol, kTol, "out, " + what);
    expect_close(dinp, rdinp, kTol, kTol, "dinp, " + what);
    expect_close(dw, rdw, kTol, kTol, "dw, " + what);
    expect_close(dbias, rdbias, kTol, kTol, "dbias, " + what);

    // dinp left out (the first layer's input): w is not converted, dw is the same.
    FVec dw_alone = dw0;
    cuda::impl::matmul_backward(Bf16ReferenceGemm(a, b, {&dw_alone}), gpu, nullptr, dw_alone.data(),
                                nullptr, dout.data(), inp.data(), w.data(), N, IC, OC,
                                cuda::kBiasSumShape, ops);
    expect_close(dw_alone, rdw, kTol, kTol, "dw without dinp, " + what);
  }
}

}  // namespace
}  // namespace ph
