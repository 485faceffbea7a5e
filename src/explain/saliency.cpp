#include "aegis/explain/saliency.h"

#include <torch/torch.h>

#include "aegis/explain/gradient_x_input.h"

namespace aegis {

Attribution Saliency::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  Attribution a;
  torch::Tensor grad = explain::target_gradient(model, x, target).second;
  a.values = o_.absolute_ ? grad.abs() : grad;
  return a;
}

Attribution GradientXInput::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  Attribution a;
  a.values = explain::target_gradient(model, x, target).second * x;
  a.baseline_score = explain::target_logit(model, torch::zeros_like(x), target);
  return a;
}

}  // namespace aegis
