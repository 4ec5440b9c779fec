// Token + position embedding.
#include "kernels/cpu/embedding.h"

#include <algorithm>
#include <cmath>
#include <cstddef>

namespace ph::cpu {

namespace {

constexpr int kColBlock = 64;  // channels per task in the backward (a fixed blocking)

}  // namespace

void embedding_forward(float* out, const int32_t* tokens, const float* wte, const float* pos, int B,
                       int T, int C, int vocab_start, int V_local, float scale) {
  // out [B*T, C]; every (b, t) row is independent.
#pragma omp parallel for schedule(static)
  for (int bt = 0; bt < B * T; ++bt) {
    const int t = bt % T;
    const int row = tokens[bt] - vocab_start;
    float* out_bt = out + static_cast<size_t>(bt) * C;
    const float* pos_t = pos ? pos + static_cast<size_t>(t) * C : nullptr;
    if (row >= 0 && row < V_local) {
      const float* w = wte + static_cast<size_t>(row) * C;
      if (pos_t) {
        for (int c = 0; c < C; ++c) out_bt[c] = scale * w[c] + pos_t[c];
      } else {
        for (int c = 0; c < C; ++c) out_bt[c] = scale * w[c];
      }
    } else if (pos_t) {
      std::copy(pos_t, pos_t + C, out_bt);
    } else {
      std::fill(out_bt, out_bt + C, 0.0f);
    }
  }
}

void embedding_backward(float* dwte, float* dpos, const float* dout, const int32_t* tokens, int B,
                        int T, int C, int vocab_start, int V_local, float scale) {
  // Several positions may share a token, so rows of dwte receive many updates. Each task owns
  // a block of channels and walks all (b, t) in order: no two threads touch the same float and
  // every sum is taken in the same order whatever the thread count.
  const int blocks = (C + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static)
  for (int blk = 0; blk < blocks; ++blk) {
    const int c0 = blk * kColBlock;
    const int n = std::min(kColBlock, C - c0);
    for (int bt = 0; bt < B * T; ++bt) {
      const float* d = dout + static_cast<size_t>(bt) * C + c0;
      const int row = tokens[bt] - vocab_start;
      if (row >= 0 && row < V_local) {
        float* dw = dwte + static_cast<size_t>(row) * C + c0;
        for (int c = 0; c < n; ++c) dw[c] += scale * d[c];
      }
      if (dpos) {
        float* dp = dpos + static_cast<size_t>(bt % T) * C + c0;
        for (int c = 0; c < n; ++c) dp[c] += d[c];
      }
    }
  }
}

void sinusoidal_table(float* table, int T, int C) {
#pragma omp parallel for schedule(static)
  for (int t = 0; t < T; ++t) {
    float* row = table + static_cast<size_t>(t) * C;
    for (int c = 0; c < C; ++c) {
      const int two_i = c - c % 2;  // columns 2i and 2i+1 share a frequency
      const double angle = t / std::pow(10000.0, static_cast<double>(two_i) / C);
      row[c] = static_cast<float>(c % 2 == 0 ? std::sin(angle) : std::cos(angle));
    }
  }
}

}  // namespace ph::cpu
