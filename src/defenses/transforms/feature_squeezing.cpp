#include "aegis/defenses/transforms/feature_squeezing.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

namespace F = torch::nn::functional;

torch::Tensor reduce_bit_depth(const torch::Tensor& x, int64_t bits, double lo, double hi) {
  AEGIS_CHECK(bits >= 1 && bits <= 16, InvalidArgument, "bit depth must be in 1..16, got " << bits);
  const double levels = std::pow(2.0, double(bits)) - 1;
  return torch::round((x - lo) / (hi - lo) * levels) / levels * (hi - lo) + lo;
}

torch::Tensor median_filter(const torch::Tensor& x, int64_t window) {
  AEGIS_CHECK(window >= 1 && window % 2 == 1, InvalidArgument, "median window must be odd and >= 1, got " << window);
  AEGIS_CHECK(x.dim() == 4, InvalidArgument, "median smoothing needs image inputs [batch, C, H, W]");
  if (window == 1) return x;
  const int64_t p = window / 2;
  torch::Tensor padded = F::pad(x, F::PadFuncOptions({p, p, p, p}).mode(torch::kReplicate));
  torch::Tensor patches = padded.unfold(2, window, 1).unfold(3, window, 1);  // [B, C, H, W, k, k]
  return std::get<0>(patches.reshape({x.size(0), x.size(1), x.size(2), x.size(3), window * window}).median(-1));
}

FeatureSqueezing::FeatureSqueezing(ClassifierPtr inner, FeatureSqueezingOptions options)
    : TransformedClassifier(std::move(inner)), o_(options) {
  AEGIS_CHECK(o_.bits_ == 0 || (o_.bits_ >= 1 && o_.bits_ <= 16), InvalidArgument,
              "feature squeezing: bits must be 0 (off) or 1..16, got " << o_.bits_);
  AEGIS_CHECK(o_.median_ >= 1 && o_.median_ % 2 == 1, InvalidArgument,
              "feature squeezing: median window must be odd and >= 1, got " << o_.median_);
  AEGIS_CHECK(o_.median_ == 1 || meta_.input_shape.size() == 3, InvalidArgument,
              "feature squeezing: median smoothing needs image inputs [C, H, W]");
  record_provenance();
}

nlohmann::json FeatureSqueezing::options_json() const { return {{"bits", o_.bits_}, {"median", o_.median_}}; }

torch::Tensor FeatureSqueezing::transform(const torch::Tensor& x) {
  torch::Tensor t = x;
  if (o_.bits_ > 0) t = reduce_bit_depth(t, o_.bits_, meta_.clip_min, meta_.clip_max);
  if (o_.median_ > 1) t = median_filter(t, o_.median_);
  return t;
}

}  // namespace aegis
