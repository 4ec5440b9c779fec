#include "model/residual_branch.h"

namespace ph {

ResidualBranch::ResidualBranch(ModelCore& core, Norm norm, LayerNorm& ln, const Dropout& dropout,
                               int C, int max_rows)
    : core_(core), pre_(norm == Norm::kPre), ln_(ln), dropout_(dropout), C_(C) {
  const size_t n = static_cast<size_t>(max_rows) * static_cast<size_t>(C);
  core.plan().own(&sum_, n);
  core.plan().shared(&branch_, "branch.out", n);
  core.plan().shared(&dy_, "branch.dy", n);
  core.plan().shared(&dx_, "branch.dx", n);
}

}  // namespace ph
