#include "model/param_table.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "kernels/common/init_normal.h"

namespace ph {

int ParamTable::add(const std::string& name, std::vector<int64_t> shape, Split split, InitKind init,
                    float init_std, bool decay, int64_t padded_rows) {
  Param p;
  p.name = name;
  p.shape = std::move(shape);
  p.split = split;
  p.init = init;
  p.init_std = init_std;
  p.decay = decay;
  p.padded_rows = padded_rows;
  params_.push_back(std::move(p));
  return static_cast<int>(params_.size()) - 1;
}

size_t ParamTable::place(int tp_rank, int tp) {
  size_t offset = 0;
  for (Param& p : params_) {
    std::vector<int64_t> full = p.shape;
    if (p.padded_rows > full[0]) full[0] = p.padded_rows;
    p.local_shape = full;
    p.block_offset.assign(full.size(), 0);
    const int dim = p.split == Split::Dim0 ? 0 : p.split == Split::Dim1 ? 1 : -1;
    if (dim >= 0 && tp > 1) {
      if (full[static_cast<size_t>(dim)] % tp != 0)
        throw std::logic_error("parameter " + p.name + " does not divide by tp");
      const int64_t part = full[static_cast<size_t>(dim)] / tp;
      p.local_shape[static_cast<size_t>(dim)] = part;
      p.block_offset[static_cast<size_t>(dim)] = part * tp_rank;
    }
    size_t n = 1;
    for (int64_t s : p.local_shape) n *= static_cast<size_t>(s);
    p.offset = offset;
    p.numel = n;
    offset += n;  // no padding: q, k, v (and their biases) must stay adjacent
  }
  total_ = offset;
  return total_;
}

int ParamTable::find(const std::string& name) const {
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].name == name) return static_cast<int>(i);
  return -1;
}

int64_t ParamTable::full_count() const {
  int64_t total = 0;
  for (const Param& p : params_) {
    int64_t n = 1;
    for (int64_t s : p.shape) n *= s;
    total += n;
  }
  return total;
}

void ParamTable::initialize(float* arena, uint64_t seed) const {
  for (const Param& p : params_) {
    float* dst = arena + p.offset;
    if (p.init == InitKind::Zeros) {
      std::memset(dst, 0, p.numel * sizeof(float));
      continue;
    }
    if (p.init == InitKind::Ones) {
      std::fill(dst, dst + p.numel, 1.0f);
      continue;
    }
    // Element (i0, i1) of the local block is element (o0 + i0, o1 + i1) of the full tensor;
    // its value depends only on (seed, name, full flat index). Padding rows stay zero.
    const uint32_t h = hash_name(p.name.c_str());
    const int64_t rows = p.local_shape[0];
    const int64_t cols = p.local_shape.size() > 1 ? p.local_shape[1] : 1;
    const int64_t full_cols = p.shape.size() > 1 ? p.shape[1] : 1;
    const int64_t o0 = p.block_offset[0];
    const int64_t o1 = p.block_offset.size() > 1 ? p.block_offset[1] : 0;
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t gi = o0 + i;
      for (int64_t j = 0; j < cols; ++j) {
        const uint64_t index = static_cast<uint64_t>(gi * full_cols + o1 + j);
        dst[i * cols + j] = gi < p.shape[0] ? p.init_std * normal_at(seed, h, index) : 0.0f;
      }
    }
  }
}

}  // namespace ph
