#include "trainer/schedule.h"

#include <algorithm>
#include <cmath>

namespace ph {

float learning_rate(const OptimConfig& o, int max_steps, int step) {
  const double lr = o.lr, min_lr = o.min_lr;
  if (step < o.warmup_steps)
    return static_cast<float>(lr * (step + 1) / static_cast<double>(o.warmup_steps));
  if (o.schedule == "constant") return o.lr;
  if (o.schedule == "inverse_sqrt") {
    const double w = std::max(o.warmup_steps, 1);
    return static_cast<float>(std::max(min_lr, lr * std::sqrt(w / (step + 1))));
  }
  const double span = std::max(1, max_steps - o.warmup_steps);
  const double progress = std::clamp((step - o.warmup_steps) / span, 0.0, 1.0);
  if (o.schedule == "linear") return static_cast<float>(lr - (lr - min_lr) * progress);
  // cosine
  const double pi = 3.14159265358979323846;
  return static_cast<float>(min_lr + 0.5 * (lr - min_lr) * (1.0 + std::cos(pi * progress)));
}

}  // namespace ph
