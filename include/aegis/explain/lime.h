#pragma once
/// LIME (Ribeiro et al. 2016): a weighted linear surrogate of the target
/// logit around one input. The interpretable features are the groups of a
/// feature mask (SLIC superpixels on images by default, each feature on
/// tabular data); each perturbed sample keeps every group with probability
/// 1/2 and sets the others to the baseline; samples are weighted by LIME's
/// kernel sqrt(exp(-d^2 / width^2)) on the cosine distance d to the input,
/// and a ridge regression (with intercept) is fitted. Its coefficients are
/// the groups' attributions (each feature gets its group's coefficient
/// divided by the group's size); its weighted R^2 on the samples is reported
/// as the local fidelity, which says how far to trust the explanation.
/// Black-box. No completeness: LIME's coefficients need not sum to anything.
///
///   Lime lime(LimeOptions().samples(1000));
///   Attribution a = lime.explain(*model, x);   // a.fidelity: [batch]

#include "aegis/explain/baseline.h"
#include "aegis/explain/explainer.h"
#include "aegis/explain/feature_mask.h"

namespace aegis {

struct LimeOptions {
  FeatureMaskOptions mask_;     ///< auto: superpixels on images, each feature otherwise
  BaselineOptions baseline_;    ///< what switched-off groups become; zero by default
  int64_t samples_ = 1000;      ///< perturbed samples per input (the input itself included), >= 2
  double kernel_width_ = 0.25;  ///< LIME's image default, > 0
  double ridge_ = 1.0;          ///< L2 penalty of the surrogate (scikit-learn's Ridge alpha), >= 0
  int64_t max_batch_ = 512;     ///< perturbed inputs per forward pass, >= 1
  uint64_t seed_ = 0;

  LimeOptions& mask(FeatureMaskOptions v) { mask_ = std::move(v); return *this; }
  LimeOptions& baseline(BaselineOptions v) { baseline_ = std::move(v); return *this; }
  LimeOptions& samples(int64_t v) { samples_ = v; return *this; }
  LimeOptions& kernel_width(double v) { kernel_width_ = v; return *this; }
  LimeOptions& ridge(double v) { ridge_ = v; return *this; }
  LimeOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
  LimeOptions& seed(uint64_t v) { seed_ = v; return *this; }
};

class Lime : public Explainer {
 public:
  explicit Lime(LimeOptions options = {});
  std::string name() const override { return "lime"; }
  bool needs_gradients() const override { return false; }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  LimeOptions o_;
};

}  // namespace aegis
