#pragma once
/// Randomized smoothing (Cohen, Rosenfeld and Kolter 2019): the smoothed
/// classifier g(x) = argmax_c P(f(x + N(0, sigma^2 I)) = c), certified per
/// sample by Monte Carlo. CERTIFY: n0 noisy samples pick the top class cA, n
/// fresh samples count it; the one-sided Clopper-Pearson lower bound pA_lower
/// at level 1 - alpha gives the certified L2 radius sigma * Phi^-1(pA_lower),
/// or abstention when pA_lower <= 1/2. PREDICT abstains unless a two-sided
/// binomial test separates the top two classes at level alpha.
///
/// The base model should be trained with the same Gaussian noise (the
/// guarantee holds for any model, but the radius is only large for one that
/// is accurate under noise).
///
///   SmoothingCertificate c = certify_smoothed(*model, test.x, test.y,
///                                             RandomizedSmoothingOptions(0.25).n(1000));
///   c.certified_accuracy(0.5);

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "aegis/core/classifier.h"

namespace aegis {

struct RandomizedSmoothingOptions {
  explicit RandomizedSmoothingOptions(double sigma) : sigma_(sigma) {}
  double sigma_;              ///< noise standard deviation, > 0 (raw input units)
  int64_t n0_ = 100;          ///< samples to select the class, >= 1
  int64_t n_ = 1000;          ///< samples to estimate its probability, >= 1
  double alpha_ = 0.001;      ///< failure probability, in (0, 1)
  int64_t batch_size_ = 500;  ///< noisy samples per forward pass
  uint64_t seed_ = 0;

  RandomizedSmoothingOptions& sigma(double v) { sigma_ = v; return *this; }
  RandomizedSmoothingOptions& n0(int64_t v) { n0_ = v; return *this; }
  RandomizedSmoothingOptions& n(int64_t v) { n_ = v; return *this; }
  RandomizedSmoothingOptions& alpha(double v) { alpha_ = v; return *this; }
  RandomizedSmoothingOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  RandomizedSmoothingOptions& seed(uint64_t v) { seed_ = v; return *this; }

  void validate() const;
  nlohmann::json to_json() const;
};

struct SmoothingCertificate {
  RandomizedSmoothingOptions options{1.0};
  torch::Tensor prediction;  ///< [N] int64: certified class, -1 = abstain
  torch::Tensor radius;      ///< [N] double: certified L2 radius (0 when abstaining)
  torch::Tensor p_lower;     ///< [N] double: pA_lower
  torch::Tensor labels;      ///< [N] int64 (undefined when certify had none)
  double seconds = 0;

  int64_t samples() const { return prediction.defined() ? prediction.size(0) : 0; }
  double abstain_rate() const;
  /// Fraction of samples predicted correctly with radius >= r (needs labels).
  double certified_accuracy(double r) const;
  /// Among samples the smoothed model gets right (not abstaining), the fraction
  /// with radius >= r.
  double certified_fraction_of_correct(double r) const;
  nlohmann::json to_json(const std::vector<double>& radii = {}, bool per_sample = false) const;
};

/// CERTIFY for each sample of x; labels may be undefined.
SmoothingCertificate certify_smoothed(Classifier& model, const torch::Tensor& x, const torch::Tensor& labels,
                                      const RandomizedSmoothingOptions& options);

/// The smoothed classifier's class for each sample as the plain majority of n
/// noisy predictions (no abstention): g(x) estimated, as an attack needs it.
torch::Tensor majority_smoothed(Classifier& model, const torch::Tensor& x, const RandomizedSmoothingOptions& options);
/// PREDICT for each sample: the smoothed class or -1 (abstain), from n samples.
torch::Tensor predict_smoothed(Classifier& model, const torch::Tensor& x, const RandomizedSmoothingOptions& options);

}  // namespace aegis
