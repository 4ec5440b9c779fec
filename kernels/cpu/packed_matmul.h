// The linear layer's forward on weights packed once, for inference on few rows (incremental
// decoding: one row per hypothesis). An sgemm call repacks its operands on every call: at 128
// rows that is a sixth of a decoding step's GEMM time (the rows once per column task, the
// weights every time). Here the weights are packed once, while they stay fixed, into panels of
// packed_panel() output channels; the rows are read in place.
//
// Layout, with W = packed_panel(kernel): panel p holds channels [p * W, (p + 1) * W) of
// w [OC, IC], input by input: packed[(p * IC + i) * W + c] = w[p * W + c][i], zeros past OC.
//
// Kernels: Portable (8-float vectors: AVX2 + FMA in the portable build; W = kPanel = 24, tiles
// of 4 rows) and, chosen at run time where the CPU has it, Avx512 (W = 32, tiles of 12 rows);
// Best is the latter where it runs. A packed copy is read by the kernel it was packed for.
//
// Each output is the bias plus the products summed in input order, one fused multiply-add per
// input: a function of that row and the weights only, never of the row count, the row's place,
// the thread count or the kernel. It differs from the sgemm path (matmul_forward) in rounding
// only. The products run on a spinning team (spin_team.h), not on OpenMP's threads, so that a
// decoding step's back-to-back products do not wake sleeping threads each time.
#pragma once
#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <vector>

namespace ph::cpu {

constexpr int kPanel = 24;  // the portable kernel's panel width, a multiple of 8

// Avx512 on a CPU without AVX-512 throws std::invalid_argument, in every function below.
enum class PackedKernel { Best, Portable, Avx512 };
PackedKernel packed_kernel();           // what Best runs on this CPU
int packed_panel(PackedKernel kernel);  // its panel width W

// Floats of the packed copy of a [OC, IC] weight.
size_t packed_weight_size(int IC, int OC, PackedKernel kernel = PackedKernel::Best);
// packed [packed_weight_size(IC, OC, kernel)] = w [OC, IC] in the kernel's panels.
void pack_weight(float* packed, const float* w, int IC, int OC,
                 PackedKernel kernel = PackedKernel::Best);
// out [N, OC] = inp [N, IC] @ w^T (+ bias [OC]), w packed for `kernel`, on up to `threads`
// threads (the caller's and spin_team_run's helpers: kernels/cpu/spin_team.h), whatever
// OpenMP's setting.
void matmul_forward_packed(float* out, const float* inp, const float* packed, const float* bias,
                           int N, int IC, int OC, int threads,
                           PackedKernel kernel = PackedKernel::Best);

// Packed copies of weights that stay fixed, one per (weight, IC, OC), made at the first lookup.
class PackedWeightCache {
 public:
  const float* get(const float* w, int IC, int OC);
  size_t floats() const;  // held in all

 private:
  struct Key {
    const float* w;
    int IC, OC;
    bool operator==(const Key& o) const { return w == o.w && IC == o.IC && OC == o.OC; }
  };
  struct Hash {
    size_t operator()(const Key& k) const;
  };
  std::unordered_map<Key, std::vector<float>, Hash> packed_;
};

}  // namespace ph::cpu
