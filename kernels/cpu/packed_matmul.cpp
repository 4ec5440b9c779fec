#include "kernels/cpu/packed_matmul.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "kernels/cpu/spin_team.h"
#include "kernels/cpu/vec8.h"

namespace ph::cpu {

namespace {

constexpr int kRows = 4;  // rows per tile: 4 x 24 outputs are 12 accumulators
// Rows per task: a block of 256 rows of 1536 inputs (1.5 MiB) stays in L2/L3 while the
// panels pass over it.
constexpr int kBlockRows = 256;

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

#if defined(__x86_64__)
// The AVX-512 tile, on panels of 32 channels: a row's 32 outputs are two 16-float registers, so
// 12 rows hold 24 accumulators of 32 registers, and a panel input costs 2 fused multiply-adds
// per row for 32 outputs where the portable tile needs 3 for 24 (a row's 24 outputs as a 16-
// and an 8-float register reached 1.15x the portable tile only; 12 rows: ~5% faster than 8).
// Each output is still the products summed in input order, one fused multiply-add each, then
// the bias: the portable tile's result bit for bit. The 64-byte vectors never leave this
// function (passing them elsewhere would need AVX-512 in the caller's ABI).
constexpr int kRows512 = 12;
constexpr int kPanel512 = 32;
typedef float f16 __attribute__((vector_size(64)));

template <int R>
__attribute__((target("avx512f"))) void tile512(float* y, size_t ldy, const float* x, int IC,
                                                const float* panel, const float* bias, int cols) {
  f16 lo[R], hi[R];
  for (int r = 0; r < R; ++r) {
    lo[r] = f16{};
    hi[r] = f16{};
  }
  for (int i = 0; i < IC; ++i) {
    f16 wl, wh;
    std::memcpy(&wl, panel + static_cast<size_t>(i) * kPanel512, sizeof wl);
    std::memcpy(&wh, panel + static_cast<size_t>(i) * kPanel512 + 16, sizeof wh);
    for (int r = 0; r < R; ++r) {
      const float a = x[static_cast<size_t>(r) * static_cast<size_t>(IC) + static_cast<size_t>(i)];
      lo[r] += a * wl;
      hi[r] += a * wh;
    }
  }
  for (int r = 0; r < R; ++r) {
    float out[kPanel512];
    std::memcpy(out, &lo[r], sizeof lo[r]);
    std::memcpy(out + 16, &hi[r], sizeof hi[r]);
    float* row = y + static_cast<size_t>(r) * ldy;
    if (bias) {
      for (int c = 0; c < cols; ++c) row[c] = out[c] + bias[c];
    } else {
      std::memcpy(row, out, static_cast<size_t>(cols) * sizeof(float));
    }
  }
}

constexpr TileFn kTiles512[kRows512 + 1] = {
    nullptr,    tile512<1>, tile512<2>, tile512<3>,  tile512<4>,  tile512<5>, tile512<6>,
    tile512<7>, tile512<8>, tile512<9>, tile512<10>, tile512<11>, tile512<12>};

bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f");
  return has;
}
#else
constexpr int kRows512 = 1;
constexpr int kPanel512 = kPanel;
constexpr TileFn kTiles512[kRows512 + 1] = {nullptr, nullptr};
bool cpu_has_avx512() {
  return false;
}
#endif

// The kernel Best stands for here; Avx512 on a CPU without it throws.
PackedKernel resolve(PackedKernel kernel) {
  if (kernel == PackedKernel::Best)
    return cpu_has_avx512() ? PackedKernel::Avx512 : PackedKernel::Portable;
  if (kernel == PackedKernel::Avx512 && !cpu_has_avx512())
    throw std::invalid_argument("packed matmul: this CPU has no AVX-512");
  return kernel;
}

// A kernel's tiles (by row count), their largest row count and its panel width.
struct Tiles {
  const TileFn* fn;
  int rows, width;
};
Tiles tiles_of(PackedKernel kernel) {
  if (resolve(kernel) == PackedKernel::Avx512) return {kTiles512, kRows512, kPanel512};
  return {kTiles, kRows, kPanel};
}

}  // namespace

PackedKernel packed_kernel() {
  return resolve(PackedKernel::Best);
}

int packed_panel(PackedKernel kernel) {
  return tiles_of(kernel).width;
}

size_t packed_weight_size(int IC, int OC, PackedKernel kernel) {
  const int width = packed_panel(kernel);
  const size_t panels = static_cast<size_t>((OC + width - 1) / width);
  return panels * static_cast<size_t>(IC) * static_cast<size_t>(width);
}

void pack_weight(float* packed, const float* w, int IC, int OC, PackedKernel kernel) {
  const int width = packed_panel(kernel);
  const int panels = (OC + width - 1) / width;
  const size_t ld = static_cast<size_t>(width);
#pragma omp parallel for schedule(static)
  for (int p = 0; p < panels; ++p) {
    float* dst = packed + static_cast<size_t>(p) * static_cast<size_t>(IC) * ld;
    for (int c = 0; c < width; ++c) {  // channel by channel: each reads a row of w in order
      const int o = p * width + c;
      const float* row = o < OC ? w + static_cast<size_t>(o) * static_cast<size_t>(IC) : nullptr;
      for (int i = 0; i < IC; ++i)
        dst[static_cast<size_t>(i) * ld + static_cast<size_t>(c)] = row ? row[i] : 0.0f;
    }
  }
}

void matmul_forward_packed(float* out, const float* inp, const float* packed, const float* bias,
                           int N, int IC, int OC, int threads, PackedKernel kernel) {
  const Tiles tiles = tiles_of(kernel);
  const int width = tiles.width;
  // Tasks: (block of rows, panel), row blocks outermost; a task runs its panel over its rows,
  // the panel staying in L1/L2 while the rows stream past. One block up to kBlockRows rows.
  const int panels = (OC + width - 1) / width;
  const int blocks = (N + kBlockRows - 1) / kBlockRows;
  const size_t ldy = static_cast<size_t>(OC);
  spin_team_run(blocks * panels, threads - 1, [&](int task) {
    const int p = task % panels, first = task / panels * kBlockRows;
    const int last = std::min(N, first + kBlockRows);
    const float* panel =
        packed + static_cast<size_t>(p) * static_cast<size_t>(IC) * static_cast<size_t>(width);
    const int c0 = p * width, cols = std::min(width, OC - c0);
    const float* b = bias ? bias + c0 : nullptr;
    for (int n0 = first; n0 < last; n0 += tiles.rows) {
      const int rows = std::min(tiles.rows, last - n0);
      tiles.fn[rows](out + static_cast<size_t>(n0) * ldy + static_cast<size_t>(c0), ldy,
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
