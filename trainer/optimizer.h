// AdamW over the parameter arena, driven by the parameter table (weight decay per parameter),
// and the squared gradient norm used for clipping. The optimizer may own the moments of a
// slice [lo, hi) of the arena only: ZeRO stage 1 gives each data-parallel rank one slice.
#pragma once
#include <cstddef>
#include <vector>

#include "io/config.h"
#include "kernels/backend.h"
#include "model/param_table.h"

namespace ph {

class AdamW {
 public:
  // Moments for arena elements [lo, hi); hi == 0 means the whole arena. They are device memory
  // of `backend`, which must outlive the optimizer.
  AdamW(Backend& backend, const OptimConfig& cfg, const ParamTable& table, size_t lo = 0,
        size_t hi = 0);

  // Device pointers to the moments [size()].
  float* m() { return m_.data(); }
  float* v() { return v_.data(); }
  // Both moments from / to host memory [size()] each.
  void download_moments(float* m_host, float* v_host) const;
  void upload_moments(const float* m_host, const float* v_host);
  size_t size() const { return m_.size(); }
  size_t lo() const { return lo_; }
  size_t hi() const { return hi_; }

  // One AdamW step on elements [lo, hi) of params (the whole arena, device) with their
  // gradient grads (device; grads[0] is element lo), learning rate lr, the 1-based count t of
  // updates applied including this one (bias correction: skipped steps do not count), and
  // grad_scale multiplying every gradient first (the clipping factor).
  void step(float* params, const float* grads, float lr, int t, float grad_scale);

 private:
  Backend& be_;
  OptimConfig cfg_;
  size_t lo_, hi_;
  DeviceBuffer<float> m_, v_;
  // Each parameter's part of [lo, hi), relative to lo, with its weight decay: one backend
  // call updates them all.
  std::vector<AdamWRange> ranges_;
};

// The squared global gradient norm over arena elements [lo, hi): one range per parameter (its
// part inside [lo, hi)), summed on the device together, then added in table order — the same
// value on every backend and every call. Replicated parameters are counted only when
// count_replicated (one tensor-parallel rank counts them, so that the global norm counts every
// parameter once). The ranges are computed once, and the backend's scratch for them reserved.
class GradNorm {
 public:
  GradNorm(Backend& backend, const ParamTable& table, size_t lo, size_t hi, bool count_replicated);
  // grads: device, grads[0] is arena element lo.
  double sum_squares(const float* grads);

 private:
  Backend& be_;
  std::vector<size_t> begin_, end_;
  std::vector<double> sums_;
};

// Clipping factor for a gradient of norm `norm` under max norm `clip` (0 disables).
float clip_scale(double norm, float clip);

}  // namespace ph
