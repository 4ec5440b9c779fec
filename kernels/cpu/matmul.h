// Linear layer in PyTorch orientation through OpenBLAS sgemm.
#pragma once

namespace ph::cpu {

// out [N, OC] = inp [N, IC] @ w[OC, IC]^T + bias [OC] (bias may be null). Overwrites out.
void matmul_forward(float* out, const float* inp, const float* w, const float* bias, int N,
                    int IC, int OC);

// Accumulates (+=): dinp [N, IC] += dout @ w; dw [OC, IC] += dout^T @ inp;
// dbias [OC] += column sums of dout. dinp and dbias may be null (not needed).
void matmul_backward(float* dinp, float* dw, float* dbias, const float* dout, const float* inp,
                     const float* w, int N, int IC, int OC);

}  // namespace ph::cpu
