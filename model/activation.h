// The model's activation function (model.activation) on the backend: one switch over the
// choices, for every block that applies it (the MLP, BERT's MLM head).
#pragma once
#include <cstddef>

#include "io/config.h"
#include "kernels/backend.h"

namespace ph {

// out [n] = act(inp [n]); out may alias inp.
void activation_forward(Backend& be, Activation a, float* out, const float* inp, size_t n);
// dinp [n] += act'(inp) * dout
void activation_backward(Backend& be, Activation a, float* dinp, const float* inp,
                         const float* dout, size_t n);

}  // namespace ph
