// Row gather and scatter-add: run a layer on a subset of the rows of an activation (the MLM
// head on the masked positions only) and route its gradient back.
#pragma once
#include <cstdint>

namespace ph::cpu {

// out [n, C]: out[i, :] = inp[rows[i], :]. rows [n] index the rows of inp; a negative index
// gives a row of zeros (unpacking rows into a padded layout whose padding must stay zero).
void gather_rows(float* out, const float* inp, const int32_t* rows, int n, int C);

// Accumulates dinp[rows[i], :] += dout[i, :] for i < n (the backward of gather_rows). The rows
// must be distinct (each row of dinp is then written by one i: deterministic).
void scatter_add_rows(float* dinp, const float* dout, const int32_t* rows, int n, int C);

}  // namespace ph::cpu
