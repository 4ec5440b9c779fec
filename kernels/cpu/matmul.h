// Linear layer in PyTorch orientation through OpenBLAS sgemm.
#pragma once
#include <array>
#include <cstddef>
#include <vector>

namespace ph::cpu {

// The bf16 mode of the linear layer: host buffers that hold the operands of its sgemm calls
// rounded to bfloat16 (kernels/common/bf16.h; each value kept as the float it equals, so that
// sgemm multiplies bf16 values exactly and accumulates in fp32). One buffer per operand, sized
// by reserve() for the largest layer before the first step (Backend::reserve_linear); a call
// larger than the reservation throws std::logic_error rather than allocating mid-step. Peak
// size: N·IC + OC·IC + N·OC floats of the largest layer (for a language model, the LM head:
// about the size of the logits).
class Bf16Operands {
 public:
  enum Slot { kInp, kWeight, kDout, kSlots };
  // The floats each slot needs for a layer [N, IC] -> [N, OC] (reserve() grows to them; memory
  // estimates size the buffers with it without allocating).
  static std::array<size_t, kSlots> sizes(int N, int IC, int OC);
  // Grows the buffers to hold the operands of a layer [N, IC] -> [N, OC]; never shrinks.
  void reserve(int N, int IC, int OC);
  // round_bf16(src[0..n)) in the buffer of `slot`, in parallel.
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
// fp32 dout). accumulate = false overwrites dinp instead (bit for bit zeroing it first).
void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC, Bf16Operands* bf16 = nullptr,
                     bool accumulate = true);

}  // namespace ph::cpu
