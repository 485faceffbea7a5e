#pragma once
/// Feature ablation: for each group of a feature mask (image patches,
/// superpixels, tabular features or groups the user gives), the drop in the
/// target logit when that group alone is set to the baseline. Black-box.
/// Each feature gets its group's drop divided by the group's size, so a
/// group's features sum to the group's drop (Attribution::feature_mask says
/// which group each feature is in). No completeness: ablation drops
/// one group at a time and ignores interactions.
///
///   FeatureAblation ab(FeatureAblationOptions().mask(FeatureMaskOptions(FeatureMaskKind::Grid).patch(7)));
///   Attribution a = ab.explain(*model, x);

#include "aegis/explain/baseline.h"
#include "aegis/explain/explainer.h"
#include "aegis/explain/feature_mask.h"

namespace aegis {

struct FeatureAblationOptions {
  FeatureMaskOptions mask_;   ///< auto: 4-pixel patches on images, each feature otherwise
  BaselineOptions baseline_;  ///< zero by default
  int64_t max_batch_ = 256;   ///< ablated inputs per forward pass, >= 1

  FeatureAblationOptions& mask(FeatureMaskOptions v) { mask_ = std::move(v); return *this; }
  FeatureAblationOptions& baseline(BaselineOptions v) { baseline_ = std::move(v); return *this; }
  FeatureAblationOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
};

class FeatureAblation : public Explainer {
 public:
  explicit FeatureAblation(FeatureAblationOptions options = {});
  std::string name() const override { return "feature-ablation"; }
  bool needs_gradients() const override { return false; }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  FeatureAblationOptions o_;
};

}  // namespace aegis
