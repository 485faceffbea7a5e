#include "defenses/detectors/logistic_regression.h"

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis::detector_internal {

torch::Tensor fit_logistic_weights(const torch::Tensor& a, const torch::Tensor& b, double l2) {
  AEGIS_CHECK(a.size(0) > 0 && b.size(0) > 0, InvalidArgument,
              "fitting a detector's weights needs clean and adversarial inputs");
  AEGIS_CHECK(l2 > 0, InvalidArgument, "the weights' L2 penalty must be > 0");
  const int64_t n = a.size(0) + b.size(0), L = a.size(1);
  torch::Tensor X = torch::cat({torch::cat({a, b}), torch::ones({n, 1}, torch::kDouble)}, 1);  // + bias
  torch::Tensor t = torch::cat({torch::zeros({a.size(0)}, torch::kDouble), torch::ones({b.size(0)}, torch::kDouble)});
  torch::Tensor sw = torch::cat({torch::full({a.size(0)}, 0.5 / double(a.size(0)), torch::kDouble),
                                 torch::full({b.size(0)}, 0.5 / double(b.size(0)), torch::kDouble)});
  torch::Tensor penalty = torch::full({L + 1}, l2, torch::kDouble);
  penalty[L] = 1e-9;  // the bias is (almost) not penalised
  torch::Tensor theta = torch::zeros({L + 1}, torch::kDouble);
  for (int it = 0; it < 100; ++it) {
    torch::Tensor p = torch::sigmoid(X.matmul(theta));
    torch::Tensor grad = X.t().matmul(sw * (p - t)) + penalty * theta;
    torch::Tensor hess = (X.t() * (sw * p * (1 - p)).unsqueeze(0)).matmul(X) + torch::diag(penalty);
    torch::Tensor step = torch::linalg::solve(hess, grad, /*left=*/true);
    theta -= step;
    if (step.abs().max().item<double>() < 1e-10) break;
  }
  AEGIS_CHECK(torch::isfinite(theta).all().item<bool>(), Internal, "logistic regression of the detector's weights diverged");
  return theta;
}

}  // namespace aegis::detector_internal
