#include "aegis/explain/lime.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"
#include "explain/internal/coalitions.h"

namespace aegis {

Lime::Lime(LimeOptions options) : o_(std::move(options)) {
  AEGIS_CHECK(o_.samples_ >= 2, InvalidArgument, "lime: samples must be >= 2, got " << o_.samples_);
  AEGIS_CHECK(o_.kernel_width_ > 0, InvalidArgument, "lime: kernel width must be > 0, got " << o_.kernel_width_);
  AEGIS_CHECK(o_.ridge_ >= 0, InvalidArgument, "lime: ridge must be >= 0, got " << o_.ridge_);
  AEGIS_CHECK(o_.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o_.max_batch_);
}

nlohmann::json Lime::options_json() const {
  return {{"mask", feature_mask_json(o_.mask_)},
          {"baseline", baseline_json(o_.baseline_)},
          {"samples", o_.samples_},
          {"kernel_width", o_.kernel_width_},
          {"ridge", o_.ridge_},
          {"max_batch", o_.max_batch_},
          {"seed", o_.seed_}};
}

Attribution Lime::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  FeatureMaskOptions mo = o_.mask_;
  if (mo.kind_ == FeatureMaskKind::Auto && x.dim() == 4) mo.kind_ = FeatureMaskKind::Superpixels;
  const FeatureMask mask = make_feature_mask(mo, x, model.meta());
  const torch::Tensor baseline = make_baseline(o_.baseline_, x, model.meta());
  torch::Tensor values = torch::empty(x.sizes(), torch::kDouble);
  torch::Tensor fidelity = torch::empty({x.size(0)}, torch::kDouble);
  for (int64_t i = 0; i < x.size(0); ++i) {
    const int64_t m = mask.groups[size_t(i)], t = target[i].item<int64_t>();
    at::Generator gen = explain::sample_generator(o_.seed_, x[i], "lime");
    // Row 0 is the input itself, as in LIME.
    torch::Tensor z = torch::randint(0, 2, {o_.samples_, m}, gen, torch::kDouble);
    z[0].fill_(1.0);
    torch::Tensor y = explain::coalition_values(model, x[i], mask.ids[i], z.to(torch::kBool), baseline.narrow(0, i, 1),
                                                t, o_.max_batch_);
    // Cosine distance to the all-ones input; an empty sample is at distance 1.
    torch::Tensor on = z.sum(1);
    torch::Tensor d = 1.0 - on / (on.sqrt() * std::sqrt(double(m))).clamp_min(1e-300);
    d = torch::where(on > 0, d, torch::ones_like(d));
    torch::Tensor w = (-(d * d) / (o_.kernel_width_ * o_.kernel_width_)).exp().sqrt();
    // Weighted ridge with an unpenalised intercept: centre by the weighted means.
    const torch::Tensor sw = w / w.sum();
    torch::Tensor zbar = (z * sw.unsqueeze(1)).sum(0), ybar = (y * sw).sum();
    torch::Tensor zc = z - zbar, yc = y - ybar;
    torch::Tensor zw = zc * w.unsqueeze(1);
    torch::Tensor gram = zc.t().mm(zw) + o_.ridge_ * torch::eye(m, torch::kDouble);
    torch::Tensor coef = at::linalg_solve(gram, zw.t().mv(yc));
    torch::Tensor resid = yc - zc.mv(coef);
    const double ss_res = (w * resid * resid).sum().item<double>(), ss_tot = (w * yc * yc).sum().item<double>();
    fidelity[i] = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 1.0;
    values[i] = explain::spread_over_groups(coef, mask.ids[i]);
  }
  Attribution a;
  a.values = values.to(torch::kFloat);
  a.feature_mask = mask.ids;
  a.fidelity = fidelity;
  return a;
}

}  // namespace aegis
