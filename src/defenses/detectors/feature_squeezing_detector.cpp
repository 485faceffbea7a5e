#include "aegis/defenses/detectors/feature_squeezing_detector.h"

#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/defenses/transforms/feature_squeezing.h"

namespace aegis {

FeatureSqueezingDetector::FeatureSqueezingDetector(ClassifierPtr model, FeatureSqueezingDetectorOptions options)
    : model_(std::move(model)), o_(options) {
  AEGIS_CHECK(model_ != nullptr, InvalidArgument, "a detector needs the model it watches");
  AEGIS_CHECK(o_.bits_ > 0 || o_.median_ > 1, InvalidArgument, "feature squeezing detector: enable bits or median");
  AEGIS_CHECK(o_.bits_ >= 0 && o_.bits_ <= 16, InvalidArgument,
              "feature squeezing detector: bits must be 0..16, got " << o_.bits_);
  AEGIS_CHECK(o_.median_ >= 1 && o_.median_ % 2 == 1, InvalidArgument,
              "feature squeezing detector: median window must be odd and >= 1, got " << o_.median_);
  AEGIS_CHECK(o_.median_ == 1 || model_->meta().input_shape.size() == 3, InvalidArgument,
              "feature squeezing detector: median smoothing needs image inputs "
              "[C, H, W]");
}

torch::Tensor FeatureSqueezingDetector::score(const torch::Tensor& x) {
  torch::NoGradGuard g;
  const double lo = model_->meta().clip_min, hi = model_->meta().clip_max;
  torch::Tensor p = model_->probabilities(x);
  torch::Tensor best = torch::zeros({x.size(0)});
  if (o_.bits_ > 0)
    best = torch::max(best, (p - model_->probabilities(reduce_bit_depth(x, o_.bits_, lo, hi))).abs().sum(1));
  if (o_.median_ > 1) best = torch::max(best, (p - model_->probabilities(median_filter(x, o_.median_))).abs().sum(1));
  return best;
}

torch::Tensor FeatureSqueezingDetector::score_graph(const torch::Tensor& x) {
  const double lo = model_->meta().clip_min, hi = model_->meta().clip_max;
  torch::Tensor p = torch::softmax(model_->forward(x), 1);
  // x + (squeeze(x) - x).detach(): the squeezed value forward, the identity backward.
  auto squeezed = [&](const torch::Tensor& sq) { return x + (sq - x).detach(); };
  torch::Tensor best = torch::zeros({x.size(0)});
  torch::Tensor xd = x.detach();
  if (o_.bits_ > 0) {
    torch::Tensor q = torch::softmax(model_->forward(squeezed(reduce_bit_depth(xd, o_.bits_, lo, hi))), 1);
    best = torch::max(best, (p - q).abs().sum(1));
  }
  if (o_.median_ > 1) {
    torch::Tensor q = torch::softmax(model_->forward(squeezed(median_filter(xd, o_.median_))), 1);
    best = torch::max(best, (p - q).abs().sum(1));
  }
  return best;
}

std::unique_ptr<Detector> FeatureSqueezingDetector::from_state(const nlohmann::json& s, ClassifierPtr model) {
  FeatureSqueezingDetectorOptions o;
  try {
    o.bits(s.at("bits").get<int64_t>()).median(s.at("median").get<int64_t>());
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "feature-squeezing detector state: " << e.what());
  }
  return std::make_unique<FeatureSqueezingDetector>(std::move(model), o);
}

}  // namespace aegis
