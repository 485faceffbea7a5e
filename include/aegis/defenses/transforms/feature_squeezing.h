#pragma once
/// Feature squeezing (Xu, Evans and Qi 2018) as an input defence: bit-depth
/// reduction (each value rounded to 2^bits levels of the valid range) followed
/// by median smoothing over a window x window neighbourhood (images only).
/// Gradients are BPDA by default (see transformed_classifier.h).
///
///   auto m = std::make_shared<FeatureSqueezing>(model, FeatureSqueezingOptions().bits(1).median(3));

#include <cstdint>

#include "aegis/defenses/transforms/transformed_classifier.h"

namespace aegis {

struct FeatureSqueezingOptions {
  int64_t bits_ = 4;    ///< 1..16 bits per value; 0 = no bit-depth reduction
  int64_t median_ = 1;  ///< odd median window (1 = none); needs [C, H, W] inputs when > 1

  FeatureSqueezingOptions& bits(int64_t v) { bits_ = v; return *this; }
  FeatureSqueezingOptions& median(int64_t v) { median_ = v; return *this; }
};

/// Rounds x (in [lo, hi]) to 2^bits evenly spaced levels.
torch::Tensor reduce_bit_depth(const torch::Tensor& x, int64_t bits, double lo, double hi);
/// Median over each window x window neighbourhood (odd window, replicate
/// padding), x [B, C, H, W].
torch::Tensor median_filter(const torch::Tensor& x, int64_t window);

class FeatureSqueezing : public TransformedClassifier {
 public:
  FeatureSqueezing(ClassifierPtr inner, FeatureSqueezingOptions options);
  torch::Tensor transform(const torch::Tensor& x) override;
  std::string name() const override { return "feature-squeezing"; }
  nlohmann::json options_json() const override;

 private:
  FeatureSqueezingOptions o_;
};

}  // namespace aegis
