#include "model/residual_branch.h"

#include <stdexcept>

namespace ph {

ResidualBranch::ResidualBranch(ModelCore& core, Norm norm, LayerNorm& ln, const Dropout& dropout,
                               int C, int max_rows, bool select)
    : core_(core), pre_(norm == Norm::kPre), ln_(ln), dropout_(dropout), C_(C) {
  const size_t n = static_cast<size_t>(max_rows) * static_cast<size_t>(C);
  core.plan().own(&sum_, n);
  core.plan().shared(&branch_, "branch.out", n);
  core.plan().shared(&dy_, "branch.dy", n);
  core.plan().shared(&dx_, "branch.dx", n);
  if (select) core.plan().shared(&sel_, "branch.sel", n);
}

const Pass& ResidualBranch::output_pass(const Pass& pass, const Pass* out) const {
  if (!out) return pass;  // else a checked output_of
  if (!sel_ || pass.is_packed() || !out->is_packed() || out->B != pass.B || out->T != pass.T)
    throw std::logic_error(
        "ResidualBranch: an output pass needs a branch planned for it and a selection of "
        "rows from an unpacked pass of the same batch");
  return *out;
}

}  // namespace ph
