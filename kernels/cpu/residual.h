// Residual connection.
#pragma once
#include <cstddef>

namespace ph::cpu {

// out = a + b (out may alias a or b).
void residual_forward(float* out, const float* a, const float* b, size_t n);

}  // namespace ph::cpu
