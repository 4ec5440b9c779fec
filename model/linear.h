// Megatron's tensor-parallel linear layers (PyTorch orientation: weight [out, in], y = x W^T + b).
//
// ColumnParallelLinear: the output features are split over the tensor-parallel group; each rank
// holds out/tp rows of the weight (and of the bias) and computes its columns of y from the whole
// input x, which every rank holds. Its input is entered through copy_to_tp_region: the input
// gradient is the sum of the ranks' partial gradients.
//
// RowParallelLinear: the input features are split; each rank holds in/tp columns of the weight
// and computes a partial y from its part of x (the output of a column-parallel layer), and
// reduce_from_tp_region sums the partials. The bias is replicated and added once (tp rank 0).
#pragma once
#include <string>
#include <vector>

#include "model/block.h"

namespace ph {

class ColumnParallelLinear : public Block {
 public:
  // One weight per name, <name>.weight [out, in] (N(0, init_std)), and with `bias` one
  // <name>.bias [out] (zeros) per name. The weights are adjacent in the arena, then the biases:
  // several names (q, k, v) form one fused GEMM of out_local() = names * out / tp columns, the
  // columns of each name's local rows in turn. padded_out > out pads the rows with zeros
  // (the vocabulary of an LM head; padding never has a bias).
  ColumnParallelLinear(ModelCore& core, const std::vector<std::string>& names, int in, int out,
                       bool bias, float init_std, int max_rows, int padded_out = 0);
  // The layer of an existing weight [out_rows, in] split by rows (a tied embedding); with a
  // bias_name, a new bias of the weight's rows (zeros; padding rows included, split alike).
  ColumnParallelLinear(ModelCore& core, int weight, int in, int max_rows,
                       const std::string& bias_name = {});

  int out_local() const { return out_local_; }
  int weight() const { return w_; }
  int bias() const { return b_; }  // the first name's bias; -1 without

  // y [N, out_local()] = x [N, in] W_local^T + b_local.
  void forward(float* y, const float* x, int N);
  // The columns of `count` names of the group from name `first` on: y [N, count * out / tp]
  // (incremental decoding computes q apart from k and v).
  void forward_names(float* y, const float* x, int N, int first, int count);
  // Weight and bias gradients (+=) from dy [N, out_local()]; and the input gradient: with
  // reduce, dx [N, in] is overwritten with the full gradient (this rank's partial, summed over
  // the group); without, this rank's partial is added to dx (the caller sums the group once,
  // e.g. after several layers read the same input).
  void backward(float* dx, const float* dy, const float* x, int N, bool reduce = true);

 private:
  int in_, out_local_;
  int names_ = 1;
  int w_ = -1, b_ = -1;  // the first weight and bias of the fused group
};

class RowParallelLinear : public Block {
 public:
  // <name>.weight [out, in] (N(0, init_std)) split by columns, <name>.bias [out] (zeros)
  // replicated, with `bias`.
  RowParallelLinear(ModelCore& core, const std::string& name, int in, int out, bool bias,
                    float init_std, int max_rows);

  int in_local() const { return in_local_; }
  int weight() const { return w_; }
  int bias() const { return b_; }  // -1 without

  // y [N, out] = sum over the group of x_local [N, in_local()] W_local^T, + b.
  void forward(float* y, const float* x, int N);
  // dx [N, in_local()] overwritten with this rank's input gradient; weight and bias gradients
  // (+=) from dy [N, out] (identical on every rank: the bias gradient is the same everywhere).
  void backward(float* dx, const float* dy, const float* x, int N);

 private:
  int in_local_, out_;
  int w_ = -1, b_ = -1;
};

}  // namespace ph
