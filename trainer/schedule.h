// Learning-rate schedules: linear warmup from lr/warmup to lr over `warmup_steps`, then
// cosine / linear decay to min_lr at max_steps, constant, or inverse square root (peaking at
// the end of warmup), never below min_lr after warmup. `noam` is the Transformer paper's
// schedule with its own warmup: lr · d_model^-0.5 · min(s^-0.5, s · warmup^-1.5) for 1-based
// step s, optim.lr being its scale factor (floored at min_lr after the peak).
#pragma once
#include "io/config.h"

namespace ph {

// Learning rate for optimizer step `step` (0-based) of a model of width d_model.
float learning_rate(const OptimConfig& o, int max_steps, int step, int d_model);

}  // namespace ph
