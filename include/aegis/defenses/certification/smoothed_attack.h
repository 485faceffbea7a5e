#pragma once
/// An empirical attack on a randomized-smoothing classifier, to set beside
/// its certificate: L2 PGD on the smoothed soft classifier (SmoothAdv, Salman
/// et al. 2019), maximising -log of the mean over `eot_samples` noise draws
/// per step of the base model's probability of the true class (expectation
/// over the smoothing noise), then the smoothed class (majority of n noisy
/// predictions) of the result. A sample counts as robust when the smoothed class is right on both
/// the clean and the attacked input. This is an upper bound on the smoothed
/// model's robust accuracy at eps, the certificate a lower bound: a certified
/// accuracy above it means a broken certificate.
///
///   SmoothedAttackResult a = attack_smoothed(model, x, y, RandomizedSmoothingOptions(0.25),
///                                            SmoothedAttackOptions().eps(0.5));
///   a.robust_accuracy;   // >= certify_smoothed(...).certified_accuracy(0.5)

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>

#include "aegis/core/classifier.h"
#include "aegis/defenses/certification/randomized_smoothing.h"

namespace aegis {

struct SmoothedAttackOptions {
  double eps_ = 0.5;           ///< L2 budget, > 0
  int64_t steps_ = 20;         ///< PGD iterations (step 2.5 eps / steps), >= 1
  int64_t eot_samples_ = 16;   ///< noise draws per gradient, >= 1
  int64_t batch_size_ = 100;   ///< samples attacked at once

  SmoothedAttackOptions& eps(double v) { eps_ = v; return *this; }
  SmoothedAttackOptions& steps(int64_t v) { steps_ = v; return *this; }
  SmoothedAttackOptions& eot_samples(int64_t v) { eot_samples_ = v; return *this; }
  SmoothedAttackOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  nlohmann::json to_json() const;
};

struct SmoothedAttackResult {
  SmoothedAttackOptions options;
  torch::Tensor x_adv;        ///< [N, ...] within eps (L2) of x, in the valid range
  torch::Tensor clean_class;  ///< [N] smoothed class (majority) on x
  torch::Tensor adv_class;    ///< [N] smoothed class on x_adv
  torch::Tensor robust;       ///< [N] bool: right on both
  double clean_accuracy = 0, robust_accuracy = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// Attacks the smoothed version of `model` (noise and sample counts from
/// `smoothing`) on x with labels y.
SmoothedAttackResult attack_smoothed(const ClassifierPtr& model, const torch::Tensor& x, const torch::Tensor& y,
                                     const RandomizedSmoothingOptions& smoothing,
                                     const SmoothedAttackOptions& options = {});

}  // namespace aegis
