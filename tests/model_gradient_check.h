// Shared by the single-rank model tests: the gradient of a model's last backward against
// central finite differences of an objective, for a spread of elements of every parameter
// tensor (the vocabulary padding left out), and the sum of |gradient| of one tensor.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"

namespace ph::testing {

// grad: the gradient arena after backward of `objective` (which reruns the forward). Checks
// 5 elements per tensor to 5e-4 + 3% and that more than half carry a visible gradient.
inline void expect_gradients_match_differences(Model& model, const std::vector<float>& grad,
                                               const std::function<double()>& objective,
                                               float eps) {
  int checked = 0, nonzero = 0;
  for (const Param& p : model.table().params()) {
    const size_t cols = p.shape.size() > 1 ? static_cast<size_t>(p.shape[1]) : 1;
    const size_t real = static_cast<size_t>(p.shape[0]) * cols;
    for (int k = 0; k < 5; ++k) {
      const size_t i = p.offset + (static_cast<size_t>(k) * 7919u) % real;
      float& w = model.params()[i];
      const float saved = w;
      w = saved + eps;
      const double lp = objective();
      w = saved - eps;
      const double lm = objective();
      w = saved;
      const double fd = (lp - lm) / (2.0 * eps);
      EXPECT_NEAR(grad[i], fd, 5e-4 + 3e-2 * std::fabs(fd))
          << p.name << " element " << i - p.offset;
      ++checked;
      nonzero += std::fabs(fd) > 1e-4;
    }
  }
  EXPECT_GT(nonzero, checked / 2);  // not vacuous
}

inline double gradient_mass(const Model& model, const std::vector<float>& grad,
                            const std::string& name) {
  const ParamTable& t = model.table();
  const Param& p = t[t.find(name)];
  double sum = 0.0;
  for (size_t i = 0; i < p.numel; ++i) sum += std::fabs(grad[p.offset + i]);
  return sum;
}

}  // namespace ph::testing
