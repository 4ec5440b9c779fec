// What every block of one model shares: the backend its memory and ops belong to, the
// tensor-parallel group, the parameter table with the parameter and gradient arenas, the
// activation plan and arena, and the gradient-readiness tracker.
//
// A model is built in two phases. While its blocks are constructed they add their parameters
// to the table (in arena order), declare their activations in the plan and their gradient
// uses; finalize() then places the parameters for this tensor-parallel rank and allocates the
// three arenas, once. Blocks resolve parameter indices to device pointers with param()/grad().
#pragma once
#include <cstddef>

#include "kernels/backend.h"
#include "model/activation_plan.h"
#include "model/grad_readiness.h"
#include "model/param_table.h"
#include "parallel/tp_mappings.h"

namespace ph {

class ModelCore {
 public:
  ModelCore(Backend& be, const TpGroup& tp) : be_(be), tp_(tp) {}
  ModelCore(const ModelCore&) = delete;
  ModelCore& operator=(const ModelCore&) = delete;

  Backend& be() const { return be_; }
  const TpGroup& tp() const { return tp_; }
  ParamTable& table() { return table_; }
  const ParamTable& table() const { return table_; }
  ActivationPlan& plan() { return plan_; }
  GradReadiness& ready() { return ready_; }

  // Places the parameters for this tensor-parallel rank and allocates the parameter and
  // gradient arenas (zero-padded to a multiple of arena_multiple elements: ZeRO splits them
  // into equal data-parallel shards) and the activation arena.
  void finalize(size_t arena_multiple);

  // Device pointers of parameter p's block in the arenas (null for p < 0: an absent parameter).
  float* param(int p) { return p >= 0 ? params_.data() + table_[p].offset : nullptr; }
  float* grad(int p) { return p >= 0 ? grads_.data() + table_[p].offset : nullptr; }

  DeviceBuffer<float>& params() { return params_; }
  DeviceBuffer<float>& grads() { return grads_; }
  const DeviceBuffer<float>& params() const { return params_; }
  const DeviceBuffer<float>& acts() const { return acts_; }
  const DeviceBuffer<float>& grads() const { return grads_; }

 private:
  Backend& be_;
  TpGroup tp_;
  ParamTable table_;
  ActivationPlan plan_;
  GradReadiness ready_;
  DeviceBuffer<float> params_, grads_, acts_;
};

}  // namespace ph
