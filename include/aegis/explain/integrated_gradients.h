#pragma once
/// Integrated Gradients (Sundararajan et al. 2017): (x - x') times the
/// gradient of the target logit averaged along the straight path from the
/// baseline x' to x, by a quadrature rule (Gauss-Legendre by default: far
/// fewer steps than Riemann sums for the same completeness gap). The
/// attributions sum to f(x) - f(x') up to the integration error, reported per
/// sample as the completeness gap. The interpolated inputs go through the
/// model in chunks of at most max_batch, so many steps never run out of memory.
///
///   IntegratedGradients ig(IntegratedGradientsOptions().steps(32).baseline(BaselineOptions(BaselineKind::Blur)));
///   Attribution a = ig.explain(*model, x);

#include "aegis/explain/baseline.h"
#include "aegis/explain/explainer.h"
#include "aegis/explain/quadrature.h"

namespace aegis {

struct IntegratedGradientsOptions {
  int64_t steps_ = 32;  ///< quadrature points, >= 1
  IntegrationRule rule_ = IntegrationRule::GaussLegendre;
  BaselineOptions baseline_;  ///< zero by default
  int64_t max_batch_ = 256;   ///< interpolated inputs per forward pass, >= 1

  IntegratedGradientsOptions& steps(int64_t v) { steps_ = v; return *this; }
  IntegratedGradientsOptions& rule(IntegrationRule v) { rule_ = v; return *this; }
  IntegratedGradientsOptions& baseline(BaselineOptions v) { baseline_ = std::move(v); return *this; }
  IntegratedGradientsOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
};

class IntegratedGradients : public Explainer {
 public:
  explicit IntegratedGradients(IntegratedGradientsOptions options = {});
  std::string name() const override { return "integrated-gradients"; }
  bool needs_gradients() const override { return true; }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  IntegratedGradientsOptions o_;
};

}  // namespace aegis
