#include "aegis/explain/feature_ablation.h"

#include <torch/torch.h>

#include "aegis/core/error.h"
#include "explain/internal/coalitions.h"

namespace aegis {

FeatureAblation::FeatureAblation(FeatureAblationOptions options) : o_(std::move(options)) {
  AEGIS_CHECK(o_.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o_.max_batch_);
}

nlohmann::json FeatureAblation::options_json() const {
  return {
      {"mask", feature_mask_json(o_.mask_)}, {"baseline", baseline_json(o_.baseline_)}, {"max_batch", o_.max_batch_}};
}

Attribution FeatureAblation::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  const torch::Tensor baseline = make_baseline(o_.baseline_, x, model.meta());
  const FeatureMask mask = make_feature_mask(o_.mask_, x, model.meta());
  torch::Tensor values = torch::empty(x.sizes(), torch::kDouble);
  for (int64_t i = 0; i < x.size(0); ++i) {
    const int64_t g = mask.groups[size_t(i)], t = target[i].item<int64_t>();
    // Row 0 keeps everything (f(x)); row 1 + j drops group j.
    torch::Tensor keep = torch::cat({torch::ones({1, g}, torch::kBool), torch::eye(g, torch::kBool).logical_not()});
    torch::Tensor v =
        explain::coalition_values(model, x[i], mask.ids[i], keep, baseline.narrow(0, i, 1), t, o_.max_batch_);
    values[i] = explain::spread_over_groups(v[0] - v.narrow(0, 1, g), mask.ids[i]);
  }
  Attribution a;
  a.values = values.to(torch::kFloat);
  a.feature_mask = mask.ids;
  return a;
}

}  // namespace aegis
