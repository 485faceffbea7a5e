#include "aegis/defenses/transforms/spatial_smoothing.h"

#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/defenses/transforms/feature_squeezing.h"

namespace aegis {

namespace F = torch::nn::functional;

SpatialSmoothing::SpatialSmoothing(ClassifierPtr inner, SpatialSmoothingOptions options)
    : TransformedClassifier(std::move(inner)), o_(std::move(options)) {
  AEGIS_CHECK(o_.window_ >= 3 && o_.window_ % 2 == 1, InvalidArgument,
              "spatial smoothing: window must be odd and >= 3, got " << o_.window_);
  AEGIS_CHECK(o_.kind_ == "median" || o_.kind_ == "mean", InvalidArgument,
              "spatial smoothing: kind must be 'median' or 'mean', got '" << o_.kind_ << "'");
  AEGIS_CHECK(meta_.input_shape.size() == 3, InvalidArgument, "spatial smoothing needs image inputs [C, H, W]");
  record_provenance();
}

torch::Tensor SpatialSmoothing::transform(const torch::Tensor& x) {
  if (o_.kind_ == "median") return median_filter(x, o_.window_);
  const int64_t p = o_.window_ / 2;
  torch::Tensor padded = F::pad(x, F::PadFuncOptions({p, p, p, p}).mode(torch::kReplicate));
  return F::avg_pool2d(padded, F::AvgPool2dFuncOptions(o_.window_).stride(1));
}

}  // namespace aegis
