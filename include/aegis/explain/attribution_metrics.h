#pragma once
/// Four more explanation quality metrics, per sample (Quantus's names):
///
/// - Faithfulness correlation (Bhatt et al. 2020): for random subsets S of
///   the features, the Pearson correlation between the attributions summed
///   over S and the drop of the target logit when S is set to the baseline.
///   1 = the map predicts what removing features does; 0 = it does not.
/// - Infidelity (Yeh et al. 2019): E[(beta I.a - (f(x) - f(x - I)))^2] over
///   Gaussian perturbations I, with the scale beta that minimises it (so maps
///   of any scale compare), divided by E[(f(x) - f(x - I))^2]: 0 = the map
///   predicts the output change of every perturbation, 1 = no better than 0.
/// - Max-sensitivity (Yeh et al. 2019): the largest relative change
///   |E(x + d) - E(x)| / |E(x)| of the explanation over uniform input noise d
///   in [-radius, radius] (re-explaining the same class). Lower = steadier.
/// - Sparseness (Chalasani et al. 2020): the Gini index of |a|, in [0, 1];
///   higher = fewer features carry the map.
///
/// The first two and the last are black-box (they query the model); max-
/// sensitivity re-runs the explainer. Random draws are seeded per sample
/// (explain::sample_generator), so a batch equals its samples one at a time.
///
///   torch::Tensor fc = faithfulness_correlation(*model, x, attribution);   // [batch]
///   torch::Tensor ms = max_sensitivity(*model, explainer, x, attribution);

#include <torch/types.h>

#include <nlohmann/json.hpp>

#include "aegis/explain/baseline.h"
#include "aegis/explain/explainer.h"

namespace aegis {

struct FaithfulnessOptions {
  int64_t subsets_ = 50;            ///< random subsets per sample, >= 3
  double subset_fraction_ = 0.1;    ///< share of the features in each subset, in (0, 1)
  BaselineOptions baseline_;        ///< what removed features become; zero by default
  uint64_t seed_ = 0;
  int64_t max_batch_ = 256;

  FaithfulnessOptions& subsets(int64_t v) { subsets_ = v; return *this; }
  FaithfulnessOptions& subset_fraction(double v) { subset_fraction_ = v; return *this; }
  FaithfulnessOptions& baseline(BaselineOptions v) { baseline_ = std::move(v); return *this; }
  FaithfulnessOptions& seed(uint64_t v) { seed_ = v; return *this; }
  FaithfulnessOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
};

/// [batch] Pearson correlations (0 where either side is constant).
torch::Tensor faithfulness_correlation(Classifier& model, const torch::Tensor& x, const Attribution& attribution,
                                      const FaithfulnessOptions& options = {});

struct InfidelityOptions {
  int64_t perturbations_ = 50;  ///< Gaussian perturbations per sample, >= 2
  double stdev_ = 0.1;          ///< their std, as a fraction of the valid input range
  uint64_t seed_ = 0;
  int64_t max_batch_ = 256;

  InfidelityOptions& perturbations(int64_t v) { perturbations_ = v; return *this; }
  InfidelityOptions& stdev(double v) { stdev_ = v; return *this; }
  InfidelityOptions& seed(uint64_t v) { seed_ = v; return *this; }
  InfidelityOptions& max_batch(int64_t v) { max_batch_ = v; return *this; }
};

/// [batch] normalised infidelity in [0, 1].
torch::Tensor infidelity(Classifier& model, const torch::Tensor& x, const Attribution& attribution,
                         const InfidelityOptions& options = {});

struct SensitivityOptions {
  int64_t samples_ = 10;  ///< noisy inputs per sample, >= 1
  double radius_ = 0.02;  ///< uniform noise half-width, as a fraction of the valid input range
  uint64_t seed_ = 0;

  SensitivityOptions& samples(int64_t v) { samples_ = v; return *this; }
  SensitivityOptions& radius(double v) { radius_ = v; return *this; }
  SensitivityOptions& seed(uint64_t v) { seed_ = v; return *this; }
};

/// [batch] max over the noisy inputs of |E(x + d) - E(x)| / |E(x)| (Frobenius
/// norms; the noisy input clipped to the valid range), explaining the
/// attribution's own targets.
torch::Tensor max_sensitivity(Classifier& model, Explainer& explainer, const torch::Tensor& x,
                              const Attribution& attribution, const SensitivityOptions& options = {});

/// [batch] Gini index of |values| per sample (0 for an all-zero map).
torch::Tensor sparseness(const torch::Tensor& values);

}  // namespace aegis
