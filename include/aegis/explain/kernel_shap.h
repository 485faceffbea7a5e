#pragma once
/// KernelSHAP (Lundberg and Lee 2017): Shapley values of the feature groups
/// of a mask, where a coalition's value is the target logit with its groups
/// kept and the others taken from a background set, averaged over the set
/// (or from the baseline when no set is given). Black-box.
///
/// With at most `max_exact` groups every coalition is evaluated and the
/// values are the exact Shapley values. Otherwise coalitions are chosen as
/// SHAP's KernelExplainer does (whole subset sizes enumerated while the
/// budget allows, the rest drawn by the Shapley kernel's size distribution
/// in complementary pairs, repeats merged) and the values come from the
/// weighted least-squares fit constrained to sum to f(x) - E[f(background)]
/// (no L1 feature selection). Either way the values sum to that difference:
/// the completeness gap is float rounding. The coalitions of a sample go
/// through the model in batches of max_batch composites. Each feature gets
/// its group's value divided by the group's size.
///
///   KernelShap shap(KernelShapOptions().background(train_x.narrow(0, 0, 50)).samples(2048));
///   Attribution a = shap.explain(*model, x);

#include "aegis/explain/baseline.h"
#include "aegis/explain/explainer.h"
#include "aegis/explain/feature_mask.h"

namespace aegis {

struct KernelShapOptions {
  FeatureMaskOptions mask_;     ///< auto: 4-pixel patches on images, each feature otherwise
  torch::Tensor background_;    ///< [R, input_shape...]; undefined: the baseline (one reference per sample)
  BaselineOptions baseline_;    ///< zero by default
  int64_t samples_ = 0;         ///< coalitions to evaluate when not exact; 0: 2 * groups + 2048
  int64_t max_exact_ = 12;      ///< up to this many groups, all 2^groups coalitions (<= 20)
  int64_t max_batch_ = 512;     ///< composites per forward pass, >= 1
  uint64_t seed_ = 0;

  KernelShapOptions& mask(FeatureMaskOptions v) { mask_ = std::move(v); return *this; }
  KernelShapOptions& background(torch::Tensor v) { background_ = std::move(v); return *this; }
  KernelShapOptions& baseline(BaselineOptions v) { baseline_ = std::move(v); return *this; }
  KernelShapOptions& samples(int64_t v) { samples_ = v; return *this; }
  KernelShapOptions& max_exact(int64_t v) { max_exact_ = v; return *this; }
  KernelShapOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
  KernelShapOptions& seed(uint64_t v) { seed_ = v; return *this; }
};

class KernelShap : public Explainer {
 public:
  explicit KernelShap(KernelShapOptions options = {});
  std::string name() const override { return "kernel-shap"; }
  bool needs_gradients() const override { return false; }
  nlohmann::json options_json() const override;

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  KernelShapOptions o_;
};

namespace explain {

/// Exact Shapley values [G] from the values of all 2^G coalitions (v[mask],
/// bit j of the index = group j kept), in double.
torch::Tensor exact_shapley(const torch::Tensor& v, int64_t groups);

}  // namespace explain
}  // namespace aegis
