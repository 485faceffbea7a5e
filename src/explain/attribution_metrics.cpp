#include "aegis/explain/attribution_metrics.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

namespace {

void check_attribution(const torch::Tensor& x, const Attribution& a) {
  AEGIS_CHECK(a.values.defined() && a.values.sizes() == x.sizes(), ShapeMismatch,
              "the attribution's values must have the inputs' shape");
  AEGIS_CHECK(a.target.defined() && a.target.dim() == 1 && a.target.size(0) == x.size(0), ShapeMismatch,
              "the attribution needs one target per sample");
}

/// Target logits of many inputs for one class, in chunks.
torch::Tensor logits_of(Classifier& model, const torch::Tensor& xs, int64_t target, int64_t max_batch) {
  std::vector<torch::Tensor> out;
  for (int64_t i = 0; i < xs.size(0); i += max_batch) {
    const int64_t n = std::min(max_batch, xs.size(0) - i);
    out.push_back(
        explain::target_logit(model, xs.narrow(0, i, n), torch::full({n}, target, torch::kLong)).to(torch::kDouble));
  }
  return torch::cat(out);
}

double pearson(const torch::Tensor& a, const torch::Tensor& b) {
  torch::Tensor da = a - a.mean(), db = b - b.mean();
  const double den = std::sqrt(da.pow(2).sum().item<double>() * db.pow(2).sum().item<double>());
  return den > 0 ? (da * db).sum().item<double>() / den : 0.0;
}

}  // namespace

torch::Tensor faithfulness_correlation(Classifier& model, const torch::Tensor& x, const Attribution& attribution,
                                       const FaithfulnessOptions& o) {
  check_attribution(x, attribution);
  AEGIS_CHECK(o.subsets_ >= 3, InvalidArgument, "faithfulness needs at least 3 subsets, got " << o.subsets_);
  AEGIS_CHECK(o.subset_fraction_ > 0 && o.subset_fraction_ < 1, InvalidArgument,
              "the subset fraction must be in (0, 1), got " << o.subset_fraction_);
  torch::NoGradGuard ng;
  const torch::Tensor xf = x.to(torch::kFloat);
  const torch::Tensor base = make_baseline(o.baseline_, xf, model.meta());
  const int64_t B = x.size(0), d = x[0].numel();
  const int64_t k = std::clamp<int64_t>(int64_t(std::llround(o.subset_fraction_ * double(d))), 1, d);
  torch::Tensor out = torch::empty({B}, torch::kDouble);
  for (int64_t i = 0; i < B; ++i) {
    at::Generator gen = explain::sample_generator(o.seed_, xf.narrow(0, i, 1), "faithfulness");
    torch::Tensor mask = torch::zeros({o.subsets_, d}, torch::kBool);
    for (int64_t s = 0; s < o.subsets_; ++s)
      mask[s].index_fill_(0, torch::randperm(d, gen, torch::kLong).narrow(0, 0, k), true);
    const torch::Tensor xi = xf[i].reshape({1, d}), bi = base[i].reshape({1, d});
    auto shape = x.sizes().vec();
    shape[0] = o.subsets_;
    torch::Tensor composites = torch::where(mask, bi, xi).reshape(shape);
    const int64_t t = attribution.target[i].item<int64_t>();
    const double f0 = logits_of(model, xf.narrow(0, i, 1), t, 1).item<double>();
    torch::Tensor drop = f0 - logits_of(model, composites, t, o.max_batch_);
    torch::Tensor summed = (mask.to(torch::kDouble) * attribution.values[i].reshape({1, d}).to(torch::kDouble)).sum(1);
    out[i] = pearson(summed, drop);
  }
  return out;
}

torch::Tensor infidelity(Classifier& model, const torch::Tensor& x, const Attribution& attribution,
                         const InfidelityOptions& o) {
  check_attribution(x, attribution);
  AEGIS_CHECK(o.perturbations_ >= 2, InvalidArgument, "infidelity needs at least 2 perturbations");
  AEGIS_CHECK(o.stdev_ > 0 && std::isfinite(o.stdev_), InvalidArgument, "the noise std must be > 0, got " << o.stdev_);
  torch::NoGradGuard ng;
  const ModelMeta& meta = model.meta();
  const double sigma = o.stdev_ * (meta.clip_max - meta.clip_min);
  const torch::Tensor xf = x.to(torch::kFloat);
  const int64_t B = x.size(0), d = x[0].numel();
  torch::Tensor out = torch::empty({B}, torch::kDouble);
  for (int64_t i = 0; i < B; ++i) {
    at::Generator gen = explain::sample_generator(o.seed_, xf.narrow(0, i, 1), "infidelity");
    torch::Tensor I = torch::randn({o.perturbations_, d}, gen) * float(sigma);
    auto shape = x.sizes().vec();
    shape[0] = o.perturbations_;
    const int64_t t = attribution.target[i].item<int64_t>();
    const double f0 = logits_of(model, xf.narrow(0, i, 1), t, 1).item<double>();
    torch::Tensor delta = f0 - logits_of(model, (xf[i].reshape({1, d}) - I).reshape(shape), t, o.max_batch_);
    torch::Tensor p = (I.to(torch::kDouble) * attribution.values[i].reshape({1, d}).to(torch::kDouble)).sum(1);
    const double pp = p.pow(2).sum().item<double>(), dd = delta.pow(2).sum().item<double>();
    const double beta = pp > 0 ? (p * delta).sum().item<double>() / pp : 0.0;
    out[i] = dd > 0 ? (beta * p - delta).pow(2).sum().item<double>() / dd : 0.0;
  }
  return out;
}

torch::Tensor max_sensitivity(Classifier& model, Explainer& explainer, const torch::Tensor& x,
                              const Attribution& attribution, const SensitivityOptions& o) {
  check_attribution(x, attribution);
  AEGIS_CHECK(o.samples_ >= 1, InvalidArgument, "max-sensitivity needs at least 1 noisy sample");
  AEGIS_CHECK(o.radius_ > 0 && std::isfinite(o.radius_), InvalidArgument, "the radius must be > 0, got " << o.radius_);
  const ModelMeta& meta = model.meta();
  const double range = meta.clip_max - meta.clip_min;
  const torch::Tensor xf = x.to(torch::kFloat);
  const int64_t B = x.size(0);
  torch::Tensor out = torch::empty({B}, torch::kDouble);
  for (int64_t i = 0; i < B; ++i) {
    at::Generator gen = explain::sample_generator(o.seed_, xf.narrow(0, i, 1), "max-sensitivity");
    auto shape = x.sizes().vec();
    shape[0] = o.samples_;
    torch::Tensor noise = (torch::rand(shape, gen) * 2 - 1) * float(o.radius_ * range);
    torch::Tensor noisy = (xf.narrow(0, i, 1) + noise).clamp(meta.clip_min, meta.clip_max);
    Attribution e =
        explainer.explain(model, noisy, attribution.target.narrow(0, i, 1).expand({o.samples_}).contiguous());
    const torch::Tensor base = attribution.values[i].to(torch::kDouble);
    const double norm = std::max(base.norm().item<double>(), 1e-12);
    torch::Tensor diff = (e.values.to(torch::kDouble) - base.unsqueeze(0)).flatten(1).norm(2, {1});
    out[i] = diff.max().item<double>() / norm;
  }
  return out;
}

torch::Tensor sparseness(const torch::Tensor& values) {
  AEGIS_CHECK(values.defined() && values.dim() >= 1 && values.size(0) >= 1, InvalidArgument, "no attributions");
  torch::Tensor v = std::get<0>(values.to(torch::kDouble).abs().reshape({values.size(0), -1}).sort(1));
  const int64_t d = v.size(1);
  torch::Tensor rank = torch::arange(1, d + 1, torch::kDouble);
  torch::Tensor num = ((2 * rank - double(d) - 1) * v).sum(1);
  torch::Tensor den = v.sum(1) * double(d);
  return torch::where(den > 0, num / den.clamp_min(1e-300), torch::zeros_like(den));
}

}  // namespace aegis
