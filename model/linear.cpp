#include "model/linear.h"

namespace ph {

ColumnParallelLinear::ColumnParallelLinear(ModelCore& core, const std::vector<std::string>& names,
                                           int in, int out, bool bias, float init_std, int max_rows,
                                           int padded_out)
    : Block(core), in_(in) {
  const int64_t rows = out, cols = in;
  for (const std::string& n : names) {
    const int p = add_param(n + ".weight", {rows, cols}, Split::Dim0, InitKind::Normal, init_std,
                            true, padded_out);
    if (w_ < 0) w_ = p;
  }
  if (bias)
    for (const std::string& n : names) {
      const int p = add_param(n + ".bias", {rows}, Split::Dim0, InitKind::Zeros, 0.0f, false);
      if (b_ < 0) b_ = p;
    }
  const int full = padded_out > out ? padded_out : out;
  names_ = static_cast<int>(names.size());
  out_local_ = names_ * full / tp().size;
  be().reserve_linear(max_rows, in_, out_local_);
}

ColumnParallelLinear::ColumnParallelLinear(ModelCore& core, int weight, int in, int max_rows,
                                           const std::string& bias_name)
    : Block(core), in_(in), w_(weight) {
  use(weight);
  const Param& p = core.table()[weight];
  const int64_t rows = p.padded_rows > p.shape[0] ? p.padded_rows : p.shape[0];
  if (!bias_name.empty())
    b_ = add_param(bias_name, {p.shape[0]}, Split::Dim0, InitKind::Zeros, 0.0f, false,
                   p.padded_rows);
  out_local_ = static_cast<int>(rows) / tp().size;
  be().reserve_linear(max_rows, in_, out_local_);
}

void ColumnParallelLinear::forward(float* y, const float* x, int N) {
  be().matmul_forward(y, x, P(w_), P(b_), N, in_, out_local_);
}

void ColumnParallelLinear::forward_names(float* y, const float* x, int N, int first, int count) {
  const int per_name = out_local_ / names_;
  const size_t w0 = static_cast<size_t>(first) * static_cast<size_t>(per_name);
  be().matmul_forward(y, x, P(w_) + w0 * static_cast<size_t>(in_), b_ >= 0 ? P(b_) + w0 : nullptr,
                      N, in_, count * per_name);
}

void ColumnParallelLinear::backward(float* dx, const float* dy, const float* x, int N,
                                    bool reduce) {
  const size_t n = static_cast<size_t>(N) * static_cast<size_t>(in_);
  if (reduce)
    be().matmul_backward_into(dx, G(w_), G(b_), dy, x, P(w_), N, in_, out_local_);
  else
    be().matmul_backward(dx, G(w_), G(b_), dy, x, P(w_), N, in_, out_local_);
  if (reduce) copy_to_tp_region_backward(tp(), dx, n);
}

RowParallelLinear::RowParallelLinear(ModelCore& core, const std::string& name, int in, int out,
                                     bool bias, float init_std, int max_rows)
    : Block(core), in_local_(in / core.tp().size), out_(out) {
  w_ = add_param(name + ".weight", {out, in}, Split::Dim1, InitKind::Normal, init_std, true);
  if (bias) b_ = add_param(name + ".bias", {out}, Split::Replicated, InitKind::Zeros, 0.0f, false);
  be().reserve_linear(max_rows, in_local_, out_);
}

void RowParallelLinear::forward(float* y, const float* x, int N) {
  be().matmul_forward(y, x, P(w_), tp().lead() ? P(b_) : nullptr, N, in_local_, out_);
  reduce_from_tp_region(tp(), y, static_cast<size_t>(N) * static_cast<size_t>(out_));
}

void RowParallelLinear::backward(float* dx, const float* dy, const float* x, int N) {
  be().matmul_backward_into(dx, G(w_), G(b_), dy, x, P(w_), N, in_local_, out_);
}

}  // namespace ph
