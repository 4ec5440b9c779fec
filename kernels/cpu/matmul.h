// Linear layer in PyTorch orientation through OpenBLAS sgemm.
#pragma once
#include <cstddef>
#include <vector>

namespace ph::cpu {

// The bf16 mode of the linear layer: grow-only host buffers that hold the operands of its
// sgemm calls rounded to bfloat16 (kernels/common/bf16.h; each value kept as the float it
// equals, so that sgemm multiplies bf16 values exactly and accumulates in fp32). One buffer per
// operand, each as large as the largest call has needed so far: the shapes of a run are fixed,
// so they grow during the first step and never again. Peak size: N·IC + OC·IC + N·OC floats of
// the largest layer (for a language model, the LM head: about the size of the logits).
class Bf16Operands {
 public:
  enum Slot { kInp, kWeight, kDout, kSlots };
  // round_bf16(src[0..n)) in the buffer of `slot` (grown if needed), in parallel.
  const float* round(Slot slot, const float* src, size_t n);

 private:
  std::vector<float> buffers_[kSlots];
};

// out [N, OC] = inp [N, IC] @ w[OC, IC]^T + bias [OC] (bias may be null). Overwrites out.
// bf16 != null: inp and w are rounded to bfloat16 first (the bias is not).
void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N, int IC,
                    int OC, Bf16Operands* bf16 = nullptr);

// Accumulates (+=): dinp [N, IC] += dout @ w; dw [OC, IC] += dout^T @ inp;
// dbias [OC] += column sums of dout. dinp and dbias may be null (not needed).
// bf16 != null: dout, w and inp are rounded to bfloat16 for the two products (dbias sums the
// fp32 dout).
void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, Bf16Operands* bf16 = nullptr);

}  // namespace ph::cpu
