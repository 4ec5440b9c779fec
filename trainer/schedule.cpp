#include "trainer/schedule.h"

#include <algorithm>
#include <cmath>

namespace ph {

float learning_rate(const OptimConfig& o, int max_steps, int step, int d_model) {
  const double lr = o.lr, min_lr = o.min_lr;
  if (o.schedule == Schedule::kNoam) {
    const double s = step + 1.0, w = std::max(o.warmup_steps, 1);
    const double noam = lr / std::sqrt(static_cast<double>(d_model)) *
                        std::min(1.0 / std::sqrt(s), s * std::pow(w, -1.5));
    return static_cast<float>(s > w ? std::max(min_lr, noam) : noam);
  }
  if (step < o.warmup_steps)
    return static_cast<float>(lr * (step + 1) / static_cast<double>(o.warmup_steps));
  switch (o.schedule) {
    case Schedule::kConstant:
      return o.lr;
    case Schedule::kInverseSqrt: {
      const double w = std::max(o.warmup_steps, 1);
      return static_cast<float>(std::max(min_lr, lr * std::sqrt(w / (step + 1))));
    }
    case Schedule::kLinear:
    case Schedule::kCosine:
    case Schedule::kNoam:
      break;
  }
  const double span = std::max(1, max_steps - o.warmup_steps);
  const double progress = std::clamp((step - o.warmup_steps) / span, 0.0, 1.0);
  if (o.schedule == Schedule::kLinear) return static_cast<float>(lr - (lr - min_lr) * progress);
  // cosine
  const double pi = 3.14159265358979323846;
  return static_cast<float>(min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(pi * progress)));
}

}  // namespace ph
