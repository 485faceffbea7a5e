#include "aegis/explain/metrics.h"

#include <torch/torch.h>

#include <algorithm>
#include <map>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

double PerturbationCurves::better_than_random_fraction() const {
  torch::Tensor better = insertion ? auc > random_auc : auc < random_auc;
  return better.to(torch::kDouble).mean().item<double>();
}

nlohmann::json PerturbationCurves::to_json() const {
  return {{"kind", insertion ? "insertion" : "deletion"},
          {"mean_auc", auc.mean().item<double>()},
          {"mean_random_auc", random_auc.mean().item<double>()},
          {"better_than_random_fraction", better_than_random_fraction()},
          {"auc", std::vector<double>(auc.data_ptr<double>(), auc.data_ptr<double>() + auc.numel())}};
}

PerturbationCurves perturbation_curves(Classifier& model, const torch::Tensor& x_in, const Attribution& a,
                                       const PerturbationCurveOptions& o) {
  AEGIS_CHECK(o.steps_ >= 1, InvalidArgument, "perturbation curves: steps must be >= 1, got " << o.steps_);
  AEGIS_CHECK(o.max_batch_ >= 1, InvalidArgument, "max batch must be >= 1, got " << o.max_batch_);
  AEGIS_CHECK(a.values.defined() && a.values.sizes() == x_in.sizes() && a.target.defined(), InvalidArgument,
              "perturbation curves need an attribution of these inputs");
  model.check_input(x_in);
  const torch::Tensor x = x_in.detach().to(torch::kFloat).contiguous();
  const int64_t n = x.size(0);
  const bool image = x.dim() == 4;
  // One relevance per feature (pixel on images): [n, F].
  const torch::Tensor relevance =
      image ? a.values.to(torch::kDouble).sum(1).flatten(1) : a.values.to(torch::kDouble).flatten(1);
  const int64_t f = relevance.size(1);
  const torch::Tensor baseline = make_baseline(o.baseline_, x, model.meta());
  PerturbationCurves c;
  c.insertion = o.insertion_;
  c.curve = torch::empty({n, o.steps_ + 1}, torch::kDouble);
  c.random_curve = torch::empty({n, o.steps_ + 1}, torch::kDouble);
  // Position of each feature in an order, then "changed after step k" = position < count_k.
  std::vector<int64_t> counts;
  for (int64_t k = 0; k <= o.steps_; ++k) counts.push_back((k * f + o.steps_ / 2) / o.steps_);
  const torch::Tensor count_t = torch::tensor(counts, torch::kLong).view({-1, 1});
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < n; ++i) {
    const torch::Tensor order = std::get<1>(relevance[i].sort(/*stable=*/true, 0, /*descending=*/true));
    at::Generator gen = explain::sample_generator(o.seed_, x[i], "random-order");
    const torch::Tensor random_order = torch::randperm(f, gen, torch::kLong);
    const int64_t t = a.target[i].item<int64_t>();
    std::vector<int64_t> shape = {o.steps_ + 1};
    shape.insert(shape.end(), x.sizes().begin() + 1, x.sizes().end());
    for (int which = 0; which < 2; ++which) {
      const torch::Tensor& ord = which == 0 ? order : random_order;
      torch::Tensor position = torch::empty({f}, torch::kLong);
      position.index_put_({ord}, torch::arange(f, torch::kLong));
      torch::Tensor changed = position.unsqueeze(0) < count_t;  // [steps + 1, F]
      changed = image ? changed.view({-1, 1, x.size(2), x.size(3)}).expand(shape) : changed.view(shape);
      // Deletion moves the changed features to the baseline; insertion reveals them.
      torch::Tensor inputs = o.insertion_ ? torch::where(changed, x[i].unsqueeze(0), baseline[i].unsqueeze(0))
                                          : torch::where(changed, baseline[i].unsqueeze(0), x[i].unsqueeze(0));
      torch::Tensor& curve = which == 0 ? c.curve : c.random_curve;
      for (int64_t k0 = 0; k0 <= o.steps_; k0 += o.max_batch_) {
        const int64_t kb = std::min(o.max_batch_, o.steps_ + 1 - k0);
        curve[i].narrow(0, k0, kb).copy_(model.probabilities(inputs.narrow(0, k0, kb)).select(1, t));
      }
    }
  }
  auto area = [&](const torch::Tensor& curve) {
    return (curve.sum(1) - 0.5 * (curve.select(1, 0) + curve.select(1, o.steps_))) / double(o.steps_);
  };
  c.auc = area(c.curve);
  c.random_auc = area(c.random_curve);
  return c;
}

namespace explain {

namespace {

/// Ranks of one row with ties given their mean rank, in double.
torch::Tensor mean_ranks(const torch::Tensor& row) {
  const torch::Tensor v = row.to(torch::kDouble).contiguous();
  const int64_t n = v.numel();
  const torch::Tensor idx = std::get<1>(v.sort(/*stable=*/true, 0, false));
  const double* pv = v.data_ptr<double>();
  const int64_t* pi = idx.data_ptr<int64_t>();
  torch::Tensor ranks = torch::empty({n}, torch::kDouble);
  double* pr = ranks.data_ptr<double>();
  for (int64_t s = 0; s < n;) {
    int64_t e = s + 1;
    while (e < n && pv[pi[e]] == pv[pi[s]]) ++e;
    const double r = 0.5 * double(s + e - 1);
    for (int64_t k = s; k < e; ++k) pr[pi[k]] = r;
    s = e;
  }
  return ranks;
}

}  // namespace

torch::Tensor spearman(const torch::Tensor& a, const torch::Tensor& b) {
  AEGIS_CHECK(a.sizes() == b.sizes() && a.dim() >= 1, InvalidArgument, "spearman: maps of different shapes");
  const torch::Tensor fa = a.flatten(1), fb = b.flatten(1);
  torch::Tensor out = torch::empty({a.size(0)}, torch::kDouble);
  for (int64_t i = 0; i < a.size(0); ++i) {
    torch::Tensor ra = mean_ranks(fa[i]), rb = mean_ranks(fb[i]);
    ra -= ra.mean();
    rb -= rb.mean();
    const double den = (ra.norm() * rb.norm()).item<double>();
    // A constant map carries no order: correlation 0 unless both are constant.
    out[i] = den > 0 ? (ra * rb).sum().item<double>() / den
                     : (ra.norm().item<double>() == rb.norm().item<double>() ? 1.0 : 0.0);
  }
  return out;
}

}  // namespace explain

nlohmann::json RandomisationCheck::to_json() const {
  nlohmann::json steps = nlohmann::json::array();
  for (size_t k = 0; k < layers.size(); ++k)
    steps.push_back(
        {{"randomised_through", layers[k]}, {"spearman", similarity[k]}, {"spearman_abs", similarity_abs[k]}});
  return {{"method", method},
          {"cascade", steps},
          {"final_similarity", final_similarity},
          {"max_similarity", max_similarity},
          {"passed", passed}};
}

RandomisationCheck model_randomisation_check(ScriptClassifier& model, Explainer& explainer, const torch::Tensor& x,
                                             const RandomisationCheckOptions& o) {
  const Attribution original = explainer.explain(model, x);
  ScriptClassifier copy(model.module().clone(), model.meta());
  // Layers in registration order: names up to the last '.' (nested modules) or '_' (aegis's built-ins).
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::pair<std::string, torch::Tensor>>> params;
  for (const auto& p : copy.module().named_parameters(/*recurse=*/true)) {
    const std::string& name = p.name;
    size_t cut = name.rfind('.');
    if (cut == std::string::npos) cut = name.rfind('_');
    const std::string layer = cut == std::string::npos ? name : name.substr(0, cut);
    if (!params.count(layer)) order.push_back(layer);
    params[layer].emplace_back(name, p.value);
  }
  AEGIS_CHECK(!order.empty(), InvalidArgument, "the model has no parameters to randomise");
  RandomisationCheck s;
  s.method = explainer.name();
  s.max_similarity = o.max_similarity_;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    {
      torch::NoGradGuard no_grad;  // for the new weights only: the explainer needs autograd
      for (auto& [name, t] : params[*it]) {
        at::Generator gen = make_generator(o.seed_, "randomise:" + name);
        const double sd = t.numel() > 1 ? t.std().item<double>() : 0.0;
        t.copy_(torch::randn(t.sizes(), gen, torch::kFloat).to(t.dtype()) * (sd > 0 ? sd : 0.05));
      }
    }
    Attribution now = explainer.explain(copy, x, original.target);
    s.layers.push_back(*it);
    s.similarity.push_back(explain::spearman(original.values, now.values).mean().item<double>());
    s.similarity_abs.push_back(explain::spearman(original.values.abs(), now.values.abs()).mean().item<double>());
  }
  s.final_similarity = s.similarity.back();
  s.passed = s.final_similarity <= o.max_similarity_;
  return s;
}

}  // namespace aegis
