#include "aegis/explain/explainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"

namespace aegis {

nlohmann::json Attribution::to_json() const {
  nlohmann::json samples = nlohmann::json::array();
  torch::Tensor sums = explain::per_sample_sum(values.to(torch::kDouble));
  for (int64_t i = 0; i < values.size(0); ++i) {
    nlohmann::json s = {{"target", target[i].item<int64_t>()},
                        {"score", score[i].item<double>()},
                        {"attribution_sum", sums[i].item<double>()}};
    if (baseline_score.defined()) s["baseline_score"] = baseline_score[i].item<double>();
    if (gap.defined()) s["completeness_gap"] = gap[i].item<double>();
    if (feature_mask.defined()) s["feature_groups"] = feature_mask[i].max().item<int64_t>() + 1;
    if (fidelity.defined()) s["local_fidelity"] = fidelity[i].item<double>();
    samples.push_back(std::move(s));
  }
  nlohmann::json j = {
      {"method", method}, {"options", options}, {"queries", queries}, {"seconds", seconds}, {"samples", samples}};
  if (gap.defined() && gap.numel() > 0) j["max_abs_completeness_gap"] = gap.abs().max().item<double>();
  return j;
}

namespace {

/// A model of a given shape that answers zero logits (differentiable in x)
/// for nothing: explain() on it counts queries without running the model.
class ZeroModel : public Classifier {
 public:
  explicit ZeroModel(ModelMeta meta) : Classifier(std::move(meta)) {}

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override {
    torch::Tensor z = torch::zeros({x.size(0), meta_.num_classes}, x.options());
    return grad ? z + x.flatten(1).sum(1, true) * 0 : z;
  }
};

}  // namespace

int64_t Explainer::planned_queries(const ModelMeta& meta, const torch::Tensor& x, const torch::Tensor& target) {
  ZeroModel zero(meta);
  return explain(zero, x, target).queries;
}

Attribution Explainer::explain(Classifier& model, const torch::Tensor& x_in, const torch::Tensor& target_in) {
  const auto start = std::chrono::steady_clock::now();
  const ModelMeta& meta = model.meta();
  model.check_input(x_in);
  AEGIS_CHECK(x_in.size(0) >= 1, InvalidArgument, name() << ": no samples to explain");
  AEGIS_CHECK(!needs_gradients() || model.has_gradients(), Unsupported,
              name() << " needs gradients and this model gives none (use occlusion, ablation, kernelshap or lime)");
  torch::Tensor x = x_in.detach().to(torch::kFloat).contiguous();
  const double tol = 1e-5;
  AEGIS_CHECK(
      x.min().item<double>() >= meta.clip_min - tol && x.max().item<double>() <= meta.clip_max + tol, InvalidArgument,
      name() << ": inputs lie outside the model's valid range [" << meta.clip_min << ", " << meta.clip_max << "]");
  const int64_t q0 = model.queries();
  torch::Tensor target;
  if (target_in.defined()) {
    target = target_in.detach().to(torch::kLong).flatten();
    AEGIS_CHECK(target.size(0) == x.size(0), InvalidArgument,
                name() << ": give one target class per sample (" << x.size(0) << "), got " << target.size(0));
    AEGIS_CHECK(target.min().item<int64_t>() >= 0 && target.max().item<int64_t>() < meta.num_classes, InvalidArgument,
                name() << ": target classes out of range [0, " << meta.num_classes << ")");
  } else {
    target = model.predict(x).to(torch::kLong);
  }
  Attribution a = attribute(model, x, target);
  a.method = name();
  a.options = options_json();
  a.target = target;
  a.score = explain::target_logit(model, x, target);
  if (a.baseline_score.defined())
    a.gap = explain::per_sample_sum(a.values.to(torch::kDouble)) -
            (a.score.to(torch::kDouble) - a.baseline_score.to(torch::kDouble));
  a.queries = model.queries() - q0;
  a.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return a;
}

Attribution Explainer::explain_batched(Classifier& model, const torch::Tensor& x, const torch::Tensor& target,
                                       int64_t batch_size) {
  AEGIS_CHECK(batch_size >= 1, InvalidArgument, "batch size must be >= 1, got " << batch_size);
  AEGIS_CHECK(x.defined() && x.dim() >= 1 && x.size(0) >= 1, InvalidArgument, name() << ": no samples to explain");
  const int64_t n = x.size(0);
  Progress bar("explain " + name(), n);
  std::vector<Attribution> parts;
  for (int64_t i = 0; i < n; i += batch_size) {
    const int64_t b = std::min(batch_size, n - i);
    parts.push_back(explain(model, x.narrow(0, i, b), target.defined() ? target.narrow(0, i, b) : torch::Tensor()));
    bar.advance(b);
  }
  bar.finish();
  auto cat = [&](torch::Tensor Attribution::*field) {
    std::vector<torch::Tensor> v;
    for (const auto& p : parts) v.push_back(p.*field);
    return torch::cat(v);
  };
  Attribution a = parts[0];
  a.values = cat(&Attribution::values);
  a.target = cat(&Attribution::target);
  a.score = cat(&Attribution::score);
  if (a.baseline_score.defined()) a.baseline_score = cat(&Attribution::baseline_score);
  if (a.gap.defined()) a.gap = cat(&Attribution::gap);
  if (a.feature_mask.defined()) a.feature_mask = cat(&Attribution::feature_mask);
  if (a.fidelity.defined()) a.fidelity = cat(&Attribution::fidelity);
  a.queries = 0;
  a.seconds = 0;
  for (const auto& p : parts) {
    a.queries += p.queries;
    a.seconds += p.seconds;
  }
  return a;
}

namespace explain {

std::pair<torch::Tensor, torch::Tensor> target_gradient(Classifier& model, const torch::Tensor& x,
                                                        const torch::Tensor& target) {
  torch::Tensor xg = x.detach().clone().requires_grad_(true);
  torch::Tensor logits = model.forward(xg);
  torch::Tensor chosen = logits.gather(1, target.view({-1, 1})).squeeze(1);
  // The samples are independent, so the gradient of the sum is each
  // sample's gradient of its own target logit.
  torch::Tensor grad = torch::autograd::grad({chosen.sum()}, {xg})[0];
  return {chosen.detach(), grad.detach()};
}

torch::Tensor target_logit(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  return model.logits(x).gather(1, target.view({-1, 1})).squeeze(1);
}

torch::Tensor per_sample_sum(const torch::Tensor& per_sample) { return per_sample.flatten(1).sum(1); }

at::Generator sample_generator(uint64_t seed, const torch::Tensor& sample, std::string_view purpose) {
  torch::Tensor s = sample.to(torch::kFloat).contiguous();
  uint64_t h = 1469598103934665603ull;  // FNV-1a over the sample's float bytes
  const auto* bytes = reinterpret_cast<const unsigned char*>(s.data_ptr<float>());
  for (size_t b = 0; b < size_t(s.numel()) * sizeof(float); ++b) h = (h ^ bytes[b]) * 1099511628211ull;
  return make_generator(seed ^ h, purpose);
}

}  // namespace explain
}  // namespace aegis
