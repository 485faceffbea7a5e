#pragma once
/// Expected Gradients (Erion et al. 2021): Integrated Gradients averaged over
/// a background set instead of one baseline, estimated by sampling. For each
/// sample, `samples` pairs (x'_k drawn from the background, alpha_k from
/// U(0, 1)) give (x - x'_k) * grad f(x'_k + alpha_k (x - x'_k)); the
/// attribution is their mean. Its expectation sums to f(x) - E[f(x')]; the
/// reported baseline score is the mean of f over the references drawn, so the
/// gap is the Monte Carlo error of this estimate (it shrinks as 1/sqrt(samples)).
/// Draws are seeded per sample (explain::sample_generator): batches equal
/// single samples. White-box.
///
///   ExpectedGradients eg(background, ExpectedGradientsOptions().samples(200));
///   Attribution a = eg.explain(*model, x);

#include "aegis/explain/explainer.h"

namespace aegis {

struct ExpectedGradientsOptions {
  int64_t samples_ = 100;     ///< (reference, alpha) pairs per input, >= 1
  int64_t max_batch_ = 256;   ///< interpolated inputs per forward pass, >= 1
  uint64_t seed_ = 0;

  ExpectedGradientsOptions& samples(int64_t v) { samples_ = v; return *this; }
  ExpectedGradientsOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
  ExpectedGradientsOptions& seed(uint64_t v) { seed_ = v; return *this; }
};

class ExpectedGradients : public Explainer {
 public:
  /// `background`: [M, input_shape...] reference samples, M >= 1.
  ExpectedGradients(torch::Tensor background, ExpectedGradientsOptions options = {});
  std::string name() const override { return "expected-gradients"; }
  bool needs_gradients() const override { return true; }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  torch::Tensor background_;
  ExpectedGradientsOptions o_;
};

}  // namespace aegis
