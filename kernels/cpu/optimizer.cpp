// AdamW over a flat buffer, and the reductions used for clipping and fault detection.
#include "kernels/cpu/optimizer.h"

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ph::cpu {

namespace {

constexpr size_t kBlock = size_t{1} << 14;  // elements per task
constexpr size_t kBlocksPerPass = 256;      // partial sums held on the stack per pass

// The sum of squares of one block, in double: one compiled loop for sum_squares and
// sum_squares_ranges, so the two add the same way (noinline: not vectorised differently where
// it is inlined).
[[gnu::noinline]] double block_sum_squares(const float* x, size_t n) {
  double s = 0.0;
#pragma omp simd reduction(+ : s)
  for (size_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

// One task of a call over many ranges: elements [begin, end) of range `range`.
struct RangeTask {
  size_t range, begin, end;
};

// The ranges [begin_of(r), end_of(r)) for r < count cut into tasks of at most kBlock elements,
// each range's from its first element (the blocks sum_squares cuts it into), in range order.
template <typename BeginOf, typename EndOf>
std::vector<RangeTask> range_tasks(size_t count, BeginOf begin_of, EndOf end_of) {
  std::vector<RangeTask> tasks;
  for (size_t r = 0; r < count; ++r)
    for (size_t i0 = begin_of(r); i0 < end_of(r); i0 += kBlock)
      tasks.push_back({r, i0, std::min(end_of(r), i0 + kBlock)});
  return tasks;
}

}  // namespace

void adamw_update(float* params, const float* grads, float* m, float* v, size_t n,
                  const AdamWParams& a) {
  const AdamWParams args = a;  // a local copy: the loop need not reload it through a pointer
#pragma omp parallel for simd schedule(static)
  for (size_t i = 0; i < n; ++i) adamw_element(params[i], grads[i], m[i], v[i], args);
}

void adamw_update_ranges(float* params, const float* grads, float* m, float* v,
                         const AdamWRange* ranges, size_t count, const AdamWParams& a) {
  const std::vector<RangeTask> tasks = range_tasks(
      count, [&](size_t r) { return ranges[r].begin; }, [&](size_t r) { return ranges[r].end; });
  const auto n_tasks = static_cast<std::ptrdiff_t>(tasks.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t t = 0; t < n_tasks; ++t) {
    const RangeTask& task = tasks[static_cast<size_t>(t)];
    AdamWParams args = a;
    args.weight_decay = ranges[task.range].weight_decay;
#pragma omp simd
    for (size_t i = task.begin; i < task.end; ++i)
      adamw_element(params[i], grads[i], m[i], v[i], args);
  }
}

double sum_squares(const float* x, size_t n) {
  // Blocks of kBlock elements are summed in parallel, then their partial sums are added in
  // block order: the same additions in the same order for any thread count.
  double total = 0.0;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  for (size_t first = 0; first < blocks; first += kBlocksPerPass) {
    const size_t count = std::min(kBlocksPerPass, blocks - first);
    double partial[kBlocksPerPass];
#pragma omp parallel for schedule(static)
    for (size_t k = 0; k < count; ++k) {
      const size_t i0 = (first + k) * kBlock, i1 = std::min(n, i0 + kBlock);
      partial[k] = block_sum_squares(x + i0, i1 - i0);
    }
    for (size_t k = 0; k < count; ++k) total += partial[k];
  }
  return total;
}

void sum_squares_ranges(double* out, const float* x, const size_t* begin, const size_t* end,
                        size_t count) {
  const std::vector<RangeTask> tasks = range_tasks(
      count, [&](size_t r) { return begin[r]; }, [&](size_t r) { return end[r]; });
  std::vector<double> partial(tasks.size());
  const auto n_tasks = static_cast<std::ptrdiff_t>(tasks.size());
#pragma omp parallel for schedule(static)
  for (std::ptrdiff_t t = 0; t < n_tasks; ++t) {
    const RangeTask& task = tasks[static_cast<size_t>(t)];
    partial[static_cast<size_t>(t)] = block_sum_squares(x + task.begin, task.end - task.begin);
  }
  // Each range's blocks added in order from 0.0, as sum_squares adds them.
  std::fill(out, out + count, 0.0);
  for (size_t t = 0; t < tasks.size(); ++t) out[tasks[t].range] += partial[t];
}

bool all_finite(const float* x, size_t n) {
  uint32_t bad = 0;  // an exponent of all ones is Inf or NaN
#pragma omp parallel for simd reduction(| : bad) schedule(static)
  for (size_t i = 0; i < n; ++i)
    bad |= (std::bit_cast<uint32_t>(x[i]) & 0x7f800000u) == 0x7f800000u;
  return bad == 0;
}

}  // namespace ph::cpu
