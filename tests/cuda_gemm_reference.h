// cuBLAS's SGEMM semantics on the CPU, to run the GEMM plans of kernels/cuda in host tests.
#pragma once
#include <gtest/gtest.h>

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "kernels/cuda/gemm_plan.h"

namespace ph::testing {

// cublasSgemmStridedBatched as documented: column-major, op(A) [m, k], op(B) [k, n], C [m, n],
// C_i = alpha op(A_i) op(B_i) + beta C_i for i < batch with X_i = X + i * strideX; C is not read
// when beta == 0. Products are summed in double and rounded once.
inline void gemm_colmajor_reference(const cuda::GemmCall& g, const float* A, const float* B,
                                    float* C) {
  for (int p = 0; p < g.batch; ++p) {
    const float* a = A + p * g.strideA;
    const float* b = B + p * g.strideB;
    float* c = C + p * g.strideC;
    for (int j = 0; j < g.n; ++j) {
      for (int i = 0; i < g.m; ++i) {
        double acc = 0.0;
        for (int l = 0; l < g.k; ++l) {
          const float x = g.transa ? a[l + static_cast<ptrdiff_t>(i) * g.lda]
                                   : a[i + static_cast<ptrdiff_t>(l) * g.lda];
          const float y = g.transb ? b[j + static_cast<ptrdiff_t>(l) * g.ldb]
                                   : b[l + static_cast<ptrdiff_t>(j) * g.ldb];
          acc += static_cast<double>(x) * y;
        }
        float& out = c[i + static_cast<ptrdiff_t>(j) * g.ldc];
        const double prev = g.beta == 0.0f ? 0.0 : static_cast<double>(g.beta) * out;
        out = static_cast<float>(static_cast<double>(g.alpha) * acc + prev);
      }
    }
  }
}

// One past the last element a plan touches in an operand stored rows x cols with leading
// dimension ld (checked: ld >= rows, as cuBLAS requires).
inline long long plan_extent(const cuda::GemmPlan& plan, long long offset, long long stride,
                             long long outer_stride, int rows, int cols, int ld) {
  EXPECT_GE(ld, rows);
  return offset + (plan.outer - 1) * outer_stride + (plan.call.batch - 1) * stride +
         static_cast<long long>(cols - 1) * ld + rows;
}

// Runs a plan on buffers as the CUDA backend passes them, after checking that it stays inside
// them and that no element of C belongs to two of its matrices.
inline void run_plan_reference(const cuda::GemmPlan& plan, std::span<const float> A,
                               std::span<const float> B, std::span<float> C) {
  const cuda::GemmCall& g = plan.call;
  ASSERT_GE(plan.outer, 1);
  ASSERT_GE(g.batch, 1);
  const long long a_end = plan_extent(plan, plan.offsetA, g.strideA, plan.outer_strideA,
                                      g.transa ? g.k : g.m, g.transa ? g.m : g.k, g.lda);
  const long long b_end = plan_extent(plan, plan.offsetB, g.strideB, plan.outer_strideB,
                                      g.transb ? g.n : g.k, g.transb ? g.k : g.n, g.ldb);
  const long long c_end =
      plan_extent(plan, plan.offsetC, g.strideC, plan.outer_strideC, g.m, g.n, g.ldc);
  ASSERT_LE(a_end, static_cast<long long>(A.size()));
  ASSERT_LE(b_end, static_cast<long long>(B.size()));
  ASSERT_LE(c_end, static_cast<long long>(C.size()));
  std::vector<int> writes(C.size(), 0);
  for (int o = 0; o < plan.outer; ++o) {
    for (int p = 0; p < g.batch; ++p) {
      const long long c0 = plan.offsetC + o * plan.outer_strideC + p * g.strideC;
      for (int j = 0; j < g.n; ++j) {
        for (int i = 0; i < g.m; ++i) ++writes[c0 + i + static_cast<long long>(j) * g.ldc];
      }
    }
  }
  for (size_t e = 0; e < writes.size(); ++e) ASSERT_LE(writes[e], 1) << "C element " << e;
  for (int o = 0; o < plan.outer; ++o) {
    gemm_colmajor_reference(g, A.data() + plan.offsetA + o * plan.outer_strideA,
                            B.data() + plan.offsetB + o * plan.outer_strideB,
                            C.data() + plan.offsetC + o * plan.outer_strideC);
  }
}

// The reference GEMM on the buffers of one test. The drivers pass whole buffers or views into
// them (a plan adds its offsets; attention passes kv = qkv + C), so each operand is found by
// the buffer it points into, and the plan is checked to stay inside that buffer from there on.
class ReferenceGemm {
 public:
  explicit ReferenceGemm(std::vector<std::vector<float>*> buffers) : buffers_(std::move(buffers)) {}
  void operator()(const cuda::GemmPlan& plan, const float* A, const float* B, float* C) const {
    run_plan_reference(plan, find(A), find(B), find(C));
  }

 private:
  std::span<float> find(const float* p) const {
    for (std::vector<float>* v : buffers_) {
      if (!v->empty() && p >= v->data() && p < v->data() + v->size()) {
        return std::span<float>(*v).subspan(static_cast<size_t>(p - v->data()));
      }
    }
    ADD_FAILURE() << "a GEMM operand does not point into a buffer of the test";
    return {};
  }
  std::vector<std::vector<float>*> buffers_;
};

}  // namespace ph::testing
