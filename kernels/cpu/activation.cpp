// Element-wise activations; the math is kernels/common/activations.h.
//
// GELU calls tanhf (the exact GELU erff and expf). glibc (>= 2.35, x86-64) ships vector
// variants of them in libmvec but math.h declares them only under -ffast-math; declaring the
// variants here lets g++ vectorise the shared gelu()/gelu_grad() unchanged (~0.3 ns instead of
// ~9.5 ns per element on the target; expf needs -fno-math-errno, set for this file in
// CMakeLists.txt). Vector and scalar variants may differ in the last bits,
// so work is split into fixed blocks: an element is computed by the same code path whatever
// the thread count.
#include "kernels/cpu/activation.h"

#include <algorithm>
#include <cmath>

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__GLIBC__) && \
    (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 35))
extern "C" __attribute__((simd("notinbranch"))) float tanhf(float) noexcept;
extern "C" __attribute__((simd("notinbranch"))) float erff(float) noexcept;
extern "C" __attribute__((simd("notinbranch"))) float expf(float) noexcept;
#endif

#include "kernels/common/activations.h"

namespace ph::cpu {

namespace {

constexpr size_t kBlock = size_t{1} << 14;  // elements per task

// Runs body(begin, end) over [0, n) in fixed blocks, in parallel.
template <typename Body>
void for_blocks(size_t n, Body body) {
  const size_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (size_t blk = 0; blk < blocks; ++blk) {
    body(blk * kBlock, std::min(n, (blk + 1) * kBlock));
  }
}

// out = f(inp) and dinp += df(inp) * dout, element-wise, in fixed blocks.
template <float (*F)(float)>
void map_forward(float* out, const float* inp, size_t n) {
  for_blocks(n, [=](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) out[i] = F(inp[i]);
  });
}

template <float (*DF)(float)>
void map_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  for_blocks(n, [=](size_t i0, size_t i1) {
    for (size_t i = i0; i < i1; ++i) dinp[i] += DF(inp[i]) * dout[i];
  });
}

}  // namespace

void gelu_forward(float* out, const float* inp, size_t n) {
  map_forward<gelu>(out, inp, n);
}

void gelu_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  map_backward<gelu_grad>(dinp, inp, dout, n);
}

void gelu_erf_forward(float* out, const float* inp, size_t n) {
  map_forward<gelu_erf>(out, inp, n);
}

void gelu_erf_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  map_backward<gelu_erf_grad>(dinp, inp, dout, n);
}

void tanh_forward(float* out, const float* inp, size_t n) {
  map_forward<tanh_act>(out, inp, n);
}

void tanh_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  map_backward<tanh_grad>(dinp, inp, dout, n);
}

void relu_forward(float* out, const float* inp, size_t n) {
  map_forward<relu>(out, inp, n);
}

void relu_backward(float* dinp, const float* inp, const float* dout, size_t n) {
  map_backward<relu_grad>(dinp, inp, dout, n);
}

}  // namespace ph::cpu
