#pragma once
/// Gradient x input (Shrikumar et al. 2016): gradient of the target logit
/// times the input. Its baseline is zero: on a linear model (and any model
/// homogeneous in x) the attributions sum to f(x) - f(0) exactly, which the
/// reported completeness gap shows; on a deep network the gap says how far
/// from that it is.
///
///   Attribution a = GradientXInput().explain(*model, x);

#include "aegis/explain/explainer.h"

namespace aegis {

class GradientXInput : public Explainer {
 public:
  std::string name() const override { return "gradient-x-input"; }
  bool needs_gradients() const override { return true; }
  nlohmann::json options_json() const override { return nlohmann::json::object(); }

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;
};

}  // namespace aegis
