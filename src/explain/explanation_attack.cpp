#include "aegis/explain/explanation_attack.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "aegis/core/error.h"
#include "aegis/explain/explainer.h"
#include "aegis/explain/metrics.h"

namespace aegis {

ExplanationMapKind parse_explanation_map_kind(const std::string& name) {
  if (name == "saliency") return ExplanationMapKind::Saliency;
  if (name == "gradient-x-input") return ExplanationMapKind::GradientXInput;
  AEGIS_FAIL(InvalidArgument, "explanation attack: unknown map '" << name << "' (saliency, gradient-x-input)");
}

std::string explanation_map_kind_name(ExplanationMapKind kind) {
  return kind == ExplanationMapKind::Saliency ? "saliency" : "gradient-x-input";
}

void ExplanationAttackOptions::validate() const {
  AEGIS_CHECK(std::isfinite(eps_) && eps_ > 0, InvalidArgument, "explanation attack: eps must be > 0, got " << eps_);
  AEGIS_CHECK(steps_ >= 1, InvalidArgument, "explanation attack: steps must be >= 1, got " << steps_);
  AEGIS_CHECK(std::isfinite(step_size_) && step_size_ >= 0, InvalidArgument,
              "explanation attack: step size must be >= 0 (0: 2.5 eps / steps), got " << step_size_);
  AEGIS_CHECK(top_k_ >= 0, InvalidArgument,
              "explanation attack: top k must be >= 0 (0: 5% of the features), got " << top_k_);
  AEGIS_CHECK(std::isfinite(fd_step_) && fd_step_ >= 0, InvalidArgument,
              "explanation attack: finite-difference step must be >= 0 (0: eps), got " << fd_step_);
}

nlohmann::json ExplanationAttackOptions::to_json() const {
  return {{"eps", eps_},
          {"steps", steps_},
          {"step_size", step_size_ > 0 ? step_size_ : 2.5 * eps_ / double(steps_)},
          {"top_k", top_k_},
          {"map", explanation_map_kind_name(map_)},
          {"fd_step", fd_step_ > 0 ? fd_step_ : eps_},
          {"keep_label", keep_label_},
          {"random_control", random_control_},
          {"seed", seed_}};
}

namespace {

std::vector<double> to_vector(const torch::Tensor& t) {
  torch::Tensor d = t.to(torch::kDouble).contiguous();
  return std::vector<double>(d.data_ptr<double>(), d.data_ptr<double>() + d.numel());
}

double mean_drop(const torch::Tensor& overlap) {
  return overlap.defined() && overlap.numel() > 0 ? (1.0 - overlap.to(torch::kDouble)).mean().item<double>() : 0.0;
}

/// [batch, F] feature mask back to the input's shape (channels share a pixel's flag).
torch::Tensor expand_features(const torch::Tensor& mask, const torch::Tensor& like) {
  if (like.dim() == 4) return mask.view({like.size(0), 1, like.size(2), like.size(3)}).expand(like.sizes());
  return mask.view(like.sizes());
}

/// Logits and the gradient of the `target` logits with respect to x: one forward and one backward.
std::pair<torch::Tensor, torch::Tensor> logits_and_gradient(Classifier& model, const torch::Tensor& x,
                                                            const torch::Tensor& target) {
  torch::Tensor xg = x.detach().clone().requires_grad_(true);
  torch::Tensor logits = model.forward(xg);
  torch::Tensor chosen = logits.gather(1, target.view({-1, 1})).squeeze(1);
  torch::Tensor grad = torch::autograd::grad({chosen.sum()}, {xg})[0];
  return {logits.detach(), grad.detach()};
}

}  // namespace

double ExplanationAttackResult::mean_overlap_drop() const { return mean_drop(topk_overlap); }
double ExplanationAttackResult::mean_random_overlap_drop() const { return mean_drop(random_topk_overlap); }

nlohmann::json ExplanationAttackResult::to_json(bool per_sample) const {
  nlohmann::json j = {{"samples", topk_overlap.size(0)},
                      {"top_k", top_k},
                      {"features", features},
                      {"mean_topk_overlap", topk_overlap.to(torch::kDouble).mean().item<double>()},
                      {"mean_overlap_drop", mean_overlap_drop()},
                      {"mean_spearman", spearman.mean().item<double>()},
                      {"mean_map_distance", map_distance.mean().item<double>()},
                      {"label_kept_fraction", label_kept.to(torch::kDouble).mean().item<double>()},
                      {"max_linf", linf.max().item<double>()},
                      {"queries", queries},
                      {"seconds", seconds}};
  if (random_topk_overlap.defined()) {
    j["random_mean_topk_overlap"] = random_topk_overlap.to(torch::kDouble).mean().item<double>();
    j["random_mean_overlap_drop"] = mean_random_overlap_drop();
    j["random_mean_spearman"] = random_spearman.mean().item<double>();
  }
  if (per_sample) {
    j["topk_overlap"] = to_vector(topk_overlap);
    j["spearman"] = to_vector(spearman);
    j["map_distance"] = to_vector(map_distance);
    j["linf"] = to_vector(linf);
    std::vector<bool> kept;
    for (int64_t i = 0; i < label_kept.size(0); ++i) kept.push_back(label_kept[i].item<bool>());
    j["label_kept"] = kept;
    if (random_topk_overlap.defined()) j["random_topk_overlap"] = to_vector(random_topk_overlap);
  }
  return j;
}

ExplanationAttackResult attack_explanation(Classifier& model, const torch::Tensor& x_in,
                                           const ExplanationAttackOptions& o) {
  const auto start = std::chrono::steady_clock::now();
  o.validate();
  AEGIS_CHECK(model.has_gradients(), Unsupported,
              "the explanation attack needs input gradients and this model gives none");
  AEGIS_CHECK(x_in.defined() && x_in.dim() >= 2 && x_in.size(0) >= 1, InvalidArgument,
              "explanation attack: no samples to attack");
  model.check_input(x_in);
  const ModelMeta& meta = model.meta();
  const torch::Tensor x0 = x_in.detach().to(torch::kFloat).contiguous();
  AEGIS_CHECK(x0.min().item<double>() >= meta.clip_min - 1e-5 && x0.max().item<double>() <= meta.clip_max + 1e-5,
              InvalidArgument,
              "explanation attack: inputs lie outside the model's valid range [" << meta.clip_min << ", "
                                                                                 << meta.clip_max << "]");
  const int64_t q0 = model.queries();
  const int64_t n = x0.size(0);
  const bool gxi = o.map_ == ExplanationMapKind::GradientXInput;
  auto map_of = [&](const torch::Tensor& g, const torch::Tensor& x) { return gxi ? g * x : g; };
  const double step = o.step_size_ > 0 ? o.step_size_ : 2.5 * o.eps_ / double(o.steps_);
  const double h = o.fd_step_ > 0 ? o.fd_step_ : o.eps_;
  const torch::Tensor lo = (x0 - o.eps_).clamp_min(meta.clip_min), hi = (x0 + o.eps_).clamp_max(meta.clip_max);

  ExplanationAttackResult r;
  auto [logits0, g0] = logits_and_gradient(model, x0, model.predict(x0).to(torch::kLong));
  r.label = logits0.argmax(1);
  r.original_map = map_of(g0, x0);
  const torch::Tensor rel0 = explain::feature_relevance(r.original_map);
  r.features = rel0.size(1);
  r.top_k = o.top_k_ > 0 ? std::min(o.top_k_, r.features) : explain::default_top_k(r.features);
  // The original top k as a [batch, F] mask (ties broken by index, as top_k_overlap does).
  torch::Tensor top = torch::zeros_like(rel0, torch::kBool);
  top.scatter_(1, std::get<1>(rel0.sort(/*stable=*/true, 1, /*descending=*/true)).narrow(1, 0, r.top_k), true);
  const torch::Tensor top_in = expand_features(top, x0).to(torch::kFloat);

  torch::Tensor best_x = x0.clone(), best_map = r.original_map.clone();
  torch::Tensor best_overlap = torch::ones({n}, torch::kDouble);
  torch::Tensor x = x0.clone();
  const std::vector<int64_t> per_sample_dims = [&] {
    std::vector<int64_t> d;
    for (int64_t k = 1; k < x0.dim(); ++k) d.push_back(k);
    return d;
  }();
  std::vector<int64_t> bshape(x0.dim(), 1);
  bshape[0] = n;
  for (int64_t t = 0; t <= o.steps_; ++t) {
    auto [logits, g] = logits_and_gradient(model, x, r.label);
    const torch::Tensor m = map_of(g, x);
    if (t > 0) {
      // Score the current iterate by the real (unsmoothed) map.
      const torch::Tensor overlap = explain::top_k_overlap(r.original_map, m, r.top_k);
      torch::Tensor better = overlap < best_overlap;
      if (o.keep_label_) better = better & (logits.argmax(1) == r.label);
      if (!o.keep_label_ && t == o.steps_) better = torch::ones_like(better);
      const torch::Tensor bx = better.view(bshape);
      best_x = torch::where(bx, x, best_x);
      best_map = torch::where(bx, m, best_map);
      best_overlap = torch::where(better, overlap, best_overlap);
    }
    if (t == o.steps_) break;
    // D = A / B with A = sum_top |m|, B = sum |m|; |m| = sign(m) m, and the sign is locally constant.
    const torch::Tensor s = m.sign();
    const torch::Tensor v_top = top_in * s;
    const torch::Tensor A = (v_top * m).sum(per_sample_dims), B = (s * m).sum(per_sample_dims).clamp_min(1e-20);
    // Hessian-vector products of the target logit: for saliency, grad A = H v_top and grad B = H s;
    // for gradient x input, grad A = H (v_top x) + v_top g and likewise for B.
    const torch::Tensor va = gxi ? v_top * x : v_top, vb = gxi ? s * x : s;
    auto unit = [&](const torch::Tensor& v) {
      const torch::Tensor scale = v.abs().amax(per_sample_dims).clamp_min(1e-20);
      return std::make_pair(v / scale.view(bshape), scale);
    };
    auto [ua, sa] = unit(va);
    auto [ub, sb] = unit(vb);
    const torch::Tensor probes = torch::cat({x + h * ua, x - h * ua, x + h * ub, x - h * ub});
    const torch::Tensor pg = logits_and_gradient(model, probes, r.label.repeat({4})).second;
    torch::Tensor grad_a = (pg.narrow(0, 0, n) - pg.narrow(0, n, n)) * (sa / (2 * h)).view(bshape);
    torch::Tensor grad_b = (pg.narrow(0, 2 * n, n) - pg.narrow(0, 3 * n, n)) * (sb / (2 * h)).view(bshape);
    if (gxi) {
      grad_a = grad_a + v_top * g;
      grad_b = grad_b + s * g;
    }
    const torch::Tensor grad_d = (grad_a * B.view(bshape) - A.view(bshape) * grad_b) / (B * B).view(bshape);
    x = torch::min(torch::max(x - step * grad_d.sign(), lo), hi);
  }

  r.x_adv = best_x;
  r.attacked_map = best_map;
  r.adv_pred = model.predict(r.x_adv).to(torch::kLong);
  r.label_kept = r.adv_pred == r.label;
  r.topk_overlap = explain::top_k_overlap(r.original_map, r.attacked_map, r.top_k);
  r.spearman = explain::spearman(rel0, explain::feature_relevance(r.attacked_map));
  r.map_distance = explain::normalised_map_distance(r.original_map, r.attacked_map);
  r.linf = (r.x_adv - x0).flatten(1).abs().amax(1).to(torch::kDouble);
  if (o.random_control_) {
    // Random sign noise of the same eps, seeded per sample, clipped to the valid range.
    torch::Tensor xr = torch::empty_like(x0);
    for (int64_t i = 0; i < n; ++i) {
      at::Generator gen = explain::sample_generator(o.seed_, x0[i], "explanation-attack-control");
      xr[i].copy_(x0[i] + o.eps_ * (torch::rand(x0[i].sizes(), gen, torch::kFloat) < 0.5).to(torch::kFloat) * 2 -
                  o.eps_);
    }
    xr = torch::min(torch::max(xr, lo), hi);
    const torch::Tensor mr = map_of(logits_and_gradient(model, xr, r.label).second, xr);
    r.random_topk_overlap = explain::top_k_overlap(r.original_map, mr, r.top_k);
    r.random_spearman = explain::spearman(rel0, explain::feature_relevance(mr));
  }
  r.queries = model.queries() - q0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

namespace explain {

torch::Tensor feature_relevance(const torch::Tensor& values) {
  AEGIS_CHECK(values.defined() && values.dim() >= 2, InvalidArgument, "a map needs a batch dimension");
  const torch::Tensor a = values.detach().to(torch::kDouble).abs();
  return values.dim() == 4 ? a.sum(1).flatten(1) : a.flatten(1);
}

torch::Tensor top_k_overlap(const torch::Tensor& a, const torch::Tensor& b, int64_t k) {
  AEGIS_CHECK(a.defined() && b.defined() && a.sizes() == b.sizes(), InvalidArgument,
              "top-k overlap: maps of different shapes");
  const torch::Tensor ra = feature_relevance(a), rb = feature_relevance(b);
  AEGIS_CHECK(k >= 1 && k <= ra.size(1), InvalidArgument,
              "top-k overlap: k must be in [1, " << ra.size(1) << "], got " << k);
  auto mask = [&](const torch::Tensor& rel) {
    torch::Tensor m = torch::zeros_like(rel, torch::kBool);
    m.scatter_(1, std::get<1>(rel.sort(/*stable=*/true, 1, /*descending=*/true)).narrow(1, 0, k), true);
    return m;
  };
  return (mask(ra) & mask(rb)).sum(1).to(torch::kDouble) / double(k);
}

torch::Tensor normalised_map_distance(const torch::Tensor& a, const torch::Tensor& b) {
  AEGIS_CHECK(a.defined() && b.defined() && a.sizes() == b.sizes(), InvalidArgument,
              "map distance: maps of different shapes");
  auto unit = [](const torch::Tensor& rel) { return rel / rel.norm(2, {1}, true).clamp_min(1e-30); };
  return (unit(feature_relevance(a)) - unit(feature_relevance(b))).norm(2, {1});
}

int64_t default_top_k(int64_t features) { return std::max<int64_t>(1, (features * 5 + 50) / 100); }

}  // namespace explain
}  // namespace aegis
