#pragma once
/// Spatial smoothing as an input defence: each pixel replaced by the median
/// (default) or the mean of its window x window neighbourhood, per channel.
/// The median is not usefully differentiable; gradients are BPDA by default.
///
///   auto m = std::make_shared<SpatialSmoothing>(model, SpatialSmoothingOptions().window(3));

#include <cstdint>
#include <string>

#include "aegis/defenses/transforms/transformed_classifier.h"

namespace aegis {

struct SpatialSmoothingOptions {
  int64_t window_ = 3;           ///< odd, >= 3
  std::string kind_ = "median";  ///< "median" or "mean"

  SpatialSmoothingOptions& window(int64_t v) { window_ = v; return *this; }
  SpatialSmoothingOptions& kind(std::string v) { kind_ = std::move(v); return *this; }
};

class SpatialSmoothing : public TransformedClassifier {
 public:
  SpatialSmoothing(ClassifierPtr inner, SpatialSmoothingOptions options);
  torch::Tensor transform(const torch::Tensor& x) override;
  std::string name() const override { return "spatial-smoothing"; }
  nlohmann::json options_json() const override { return {{"window", o_.window_}, {"kind", o_.kind_}}; }

 private:
  SpatialSmoothingOptions o_;
};

}  // namespace aegis
