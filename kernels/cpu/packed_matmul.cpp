#include "kernels/cpu/packed_matmul.h"

#include <algorithm>
#include <cstring>
#include <functional>

#include "kernels/cpu/spin_team.h"

namespace ph::cpu {

namespace {

// Eight floats: one AVX register where the target has AVX (the portable build's x86-64-v3),
// two SSE registers otherwise; a*b + c contracts to a fused multiply-add where FMA exists.
typedef float f8 __attribute__((vector_size(32)));
constexpr int kRows = 4;  // rows per tile: 4 x 24 outputs are 12 accumulators
// Rows per task: a block of 256 rows of 1536 inputs (1.5 MiB) stays in L2/L3 while the
// panels pass over it.
constexpr int kBlockRows = 256;

inline f8 load8(const float* p) {
  f8 v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

inline f8 splat(float x) {
  return f8{x, x, x, x, x, x, x, x};
}

// y [R, cols] (row stride ldy) = rows x [R, IC] (stride IC) times one panel, + bias [cols] if
// any; cols <= kPanel (the last panel of a width that is not a multiple of kPanel).
template <int R>
void tile(float* y, size_t ldy, const float* x, int IC, const float* panel, const float* bias,
          int cols) {
  constexpr int kVecs = kPanel / 8;
  f8 acc[R][kVecs];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < kVecs; ++v) acc[r][v] = splat(0.0f);
  for (int i = 0; i < IC; ++i) {
    f8 w[kVecs];
    for (int v = 0; v < kVecs; ++v) w[v] = load8(panel + static_cast<size_t>(i) * kPanel + 8 * v);
    for (int r = 0; r < R; ++r) {
      const f8 a =
          splat(x[static_cast<size_t>(r) * static_cast<size_t>(IC) + static_cast<size_t>(i)]);
      for (int v = 0; v < kVecs; ++v) acc[r][v] += a * w[v];
    }
  }
  for (int r = 0; r < R; ++r) {
    float out[kPanel];
    std::memcpy(out, acc[r], sizeof out);
    float* row = y + static_cast<size_t>(r) * ldy;
    if (bias) {
      for (int c = 0; c < cols; ++c) row[c] = out[c] + bias[c];
    } else {
      std::memcpy(row, out, static_cast<size_t>(cols) * sizeof(float));
    }
  }
}

using TileFn = void (*)(float*, size_t, const float*, int, const float*, const float*, int);
constexpr TileFn kTiles[kRows + 1] = {nullptr, tile<1>, tile<2>, tile<3>, tile<4>};

}  // namespace

size_t packed_weight_size(int IC, int OC) {
  const size_t panels = static_cast<size_t>((OC + kPanel - 1) / kPanel);
  return panels * static_cast<size_t>(IC) * kPanel;
}

void pack_weight(float* packed, const float* w, int IC, int OC) {
  const int panels = (OC + kPanel - 1) / kPanel;
#pragma omp parallel for schedule(static)
  for (int p = 0; p < panels; ++p) {
    float* dst = packed + static_cast<size_t>(p) * static_cast<size_t>(IC) * kPanel;
    for (int i = 0; i < IC; ++i)
      for (int c = 0; c < kPanel; ++c) {
        const int o = p * kPanel + c;
        dst[static_cast<size_t>(i) * kPanel + static_cast<size_t>(c)] =
            o < OC ? w[static_cast<size_t>(o) * static_cast<size_t>(IC) + static_cast<size_t>(i)]
                   : 0.0f;
      }
  }
}

void matmul_forward_packed(float* out, const float* inp, const float* packed, const float* bias,
                           int N, int IC, int OC, int threads) {
  // Tasks: (block of rows, panel), row blocks outermost; a task runs its panel over its rows,
  // the panel staying in L1/L2 while the rows stream past. One block up to kBlockRows rows.
  const int panels = (OC + kPanel - 1) / kPanel;
  const int blocks = (N + kBlockRows - 1) / kBlockRows;
  const size_t ldy = static_cast<size_t>(OC);
  spin_team_run(blocks * panels, threads - 1, [&](int task) {
    const int p = task % panels, first = task / panels * kBlockRows;
    const int last = std::min(N, first + kBlockRows);
    const float* panel = packed + static_cast<size_t>(p) * static_cast<size_t>(IC) * kPanel;
    const int c0 = p * kPanel, cols = std::min(kPanel, OC - c0);
    const float* b = bias ? bias + c0 : nullptr;
    for (int n0 = first; n0 < last; n0 += kRows) {
      const int rows = std::min(kRows, last - n0);
      kTiles[rows](out + static_cast<size_t>(n0) * ldy + static_cast<size_t>(c0), ldy,
                   inp + static_cast<size_t>(n0) * static_cast<size_t>(IC), IC, panel, b, cols);
    }
  });
}

size_t PackedWeightCache::Hash::operator()(const Key& k) const {
  return std::hash<const float*>()(k.w) ^ (static_cast<size_t>(k.IC) * 0x9e3779b97f4a7c15ULL) ^
         static_cast<size_t>(k.OC);
}

const float* PackedWeightCache::get(const float* w, int IC, int OC) {
  auto [it, added] = packed_.try_emplace(Key{w, IC, OC});
  if (added) {
    it->second.resize(packed_weight_size(IC, OC));
    pack_weight(it->second.data(), w, IC, OC);
  }
  return it->second.data();
}

size_t PackedWeightCache::floats() const {
  size_t n = 0;
  for (const auto& kv : packed_) n += kv.second.size();
  return n;
}

}  // namespace ph::cpu
