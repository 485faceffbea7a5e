#pragma once
/// Explanation quality metrics: what tells a user which method to trust on
/// their model.
///
/// Deletion and insertion (Petsiuk et al. 2018): features are set to the
/// baseline (deletion) or revealed from it (insertion) in order of
/// attribution, most relevant first, and the target class's probability is
/// read after each step; the area under that curve is compared with the same
/// curve for a random order (seeded per sample). A faithful map makes the
/// deletion curve fall faster than random (lower AUC) and the insertion
/// curve rise faster (higher AUC). On images a feature is a pixel (all its
/// channels together), ranked by the attribution summed over channels.
///
///   PerturbationCurves c = perturbation_curves(*model, x, attribution, PerturbationCurveOptions());
///   c.auc, c.random_auc;                     // [batch]
///   c.better_than_random_fraction();          // share of samples beating random
///
/// Model randomisation (Adebayo et al. 2018): the model's layers are
/// re-randomised cascading from the output down and the explanation is
/// recomputed after each; its Spearman rank correlation with the original
/// map should fall. A method whose maps stay similar once every layer is
/// random explains the input, not the model, and fails.
///
///   RandomisationCheck s = model_randomisation_check(*model, explainer, x, RandomisationCheckOptions());
///   s.passed;  s.final_similarity;

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/core/script_classifier.h"
#include "aegis/explain/baseline.h"
#include "aegis/explain/explainer.h"

namespace aegis {

struct PerturbationCurveOptions {
  bool insertion_ = false;    ///< false: deletion
  int64_t steps_ = 20;        ///< curve points after the start, >= 1
  BaselineOptions baseline_;  ///< what deleted features become (insertion starts from it); zero by default
  uint64_t seed_ = 0;         ///< the random order
  int64_t max_batch_ = 256;

  PerturbationCurveOptions& insertion(bool v) { insertion_ = v; return *this; }
  PerturbationCurveOptions& steps(int64_t v) { steps_ = v; return *this; }
  PerturbationCurveOptions& baseline(BaselineOptions v) { baseline_ = std::move(v); return *this; }
  PerturbationCurveOptions& seed(uint64_t v) { seed_ = v; return *this; }
  PerturbationCurveOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
};

struct PerturbationCurves {
  bool insertion = false;
  torch::Tensor curve;         ///< [batch, steps + 1]: target probability after each step
  torch::Tensor random_curve;  ///< the same for a random order
  torch::Tensor auc;           ///< [batch]: trapezoid area over the fraction of features changed, in [0, 1]
  torch::Tensor random_auc;
  /// Samples whose AUC beats random (below for deletion, above for insertion).
  double better_than_random_fraction() const;
  nlohmann::json to_json() const;
};

/// The curves of `attribution` (values for x, targets) on `model`. Black-box.
PerturbationCurves perturbation_curves(Classifier& model, const torch::Tensor& x, const Attribution& attribution,
                                       const PerturbationCurveOptions& options = {});

struct RandomisationCheckOptions {
  double max_similarity_ = 0.5;  ///< fail when the map's rank correlation after full randomisation exceeds this
  uint64_t seed_ = 0;            ///< the random weights

  RandomisationCheckOptions& max_similarity(double v) { max_similarity_ = v; return *this; }
  RandomisationCheckOptions& seed(uint64_t v) { seed_ = v; return *this; }
};

struct RandomisationCheck {
  std::string method;
  std::vector<std::string> layers;  ///< randomised cumulatively, output layer first
  std::vector<double> similarity;   ///< per layer: mean Spearman correlation with the original maps
  std::vector<double> similarity_abs;  ///< the same on absolute values
  double final_similarity = 0;      ///< after every layer is random (signed maps)
  double max_similarity = 0;
  bool passed = false;
  nlohmann::json to_json() const;
};

/// Re-randomises the layers of a copy of `model` (each parameter drawn from
/// a normal with the original's standard deviation; the model itself never
/// changes), output layer first, recomputing `explainer` on x after each.
/// Layers are the parameter names up to the last '.' or '_' ("conv1_weight"
/// and "conv1_bias" are layer conv1).
RandomisationCheck model_randomisation_check(ScriptClassifier& model, Explainer& explainer, const torch::Tensor& x,
                                      const RandomisationCheckOptions& options = {});

namespace explain {
/// Spearman rank correlation of two maps, per sample (rows of [batch, ...]),
/// ties given their mean rank.
torch::Tensor spearman(const torch::Tensor& a, const torch::Tensor& b);
}  // namespace explain

}  // namespace aegis
