// Learning-rate schedules: linear warmup from lr/warmup to lr over `warmup_steps`, then
// cosine / linear decay to min_lr at max_steps, constant, or inverse square root (the
// original Transformer's schedule, peaking at the end of warmup), never below min_lr.
#pragma once
#include "io/config.h"

namespace ph {

// Learning rate for optimizer step `step` (0-based).
float learning_rate(const OptimConfig& o, int max_steps, int step);

}  // namespace ph
