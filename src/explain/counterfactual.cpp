#include "aegis/explain/counterfactual.h"

#include <torch/torch.h>

#include <cmath>
#include <limits>

#include "aegis/attacks/evasion/carlini_wagner.h"
#include "aegis/core/error.h"

namespace aegis {

namespace {

/// The elastic-net optimiser of EAD (Chen et al. 2018), targeted: minimises
/// c f(x') + ||x' - x||_2^2 + beta ||x' - x||_1 over the valid range, with
/// f = max(max_{j != t} z_j - z_t + kappa, 0), by FISTA (gradient step on the
/// smooth part, then soft thresholding at beta around x and clipping), the
/// step size decaying as sqrt(1 - k / steps); binary search on c per sample.
/// Keeps the successful point of smallest L1 (EAD's L1 decision rule);
/// samples never moved into the class stay at x.
torch::Tensor elastic_net_search(Classifier& model, const torch::Tensor& x, const torch::Tensor& to,
                                 const CounterfactualOptions& o) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const int64_t n = x.size(0);
  std::vector<int64_t> view(size_t(x.dim()), 1);
  view[0] = n;
  const torch::Tensor to1 = to.view({-1, 1});

  torch::Tensor c = torch::full({n}, o.initial_const_);
  torch::Tensor lower = torch::zeros({n}), upper = torch::full({n}, 1e10);
  torch::Tensor best_l1 = torch::full({n}, std::numeric_limits<float>::infinity());
  torch::Tensor best = x.clone();

  // Soft thresholding at beta around x, then the valid range.
  auto shrink = [&](const torch::Tensor& z) {
    torch::Tensor d = z - x;
    torch::Tensor s = torch::sign(d) * (d.abs() - o.beta_).clamp_min(0);
    return (x + s).clamp(lo, hi);
  };

  for (int64_t round = 0; round < o.binary_search_steps_; ++round) {
    torch::Tensor xk = x.clone(), yk = x.clone();
    torch::Tensor round_success = torch::zeros({n}, torch::kBool);
    for (int64_t step = 0; step < o.steps_; ++step) {
      torch::Tensor yg = yk.detach().requires_grad_(true);
      torch::Tensor logits = model.forward(yg);
      torch::Tensor own = logits.gather(1, to1).squeeze(1);
      torch::Tensor other = std::get<0>(logits.scatter(1, to1, -std::numeric_limits<float>::infinity()).max(1));
      torch::Tensor f = (other - own + o.kappa_).clamp_min(0);
      torch::Tensor smooth = (c * f).sum() + (yg - x).pow(2).sum();
      torch::Tensor g = torch::autograd::grad({smooth}, {yg})[0].detach();

      torch::NoGradGuard no_grad;
      const double lr = o.lr_ * std::sqrt(1.0 - double(step) / double(o.steps_));
      torch::Tensor next = shrink(yk - lr * g);
      yk = next + (double(step) / double(step + 3)) * (next - xk);
      yk = yk.clamp(lo, hi);
      xk = next;
      // Success is judged at the iterate itself (one forward, no autograd).
      torch::Tensor z = model.logits(xk);
      torch::Tensor z_own = z.gather(1, to1).squeeze(1);
      torch::Tensor z_other = std::get<0>(z.scatter(1, to1, -std::numeric_limits<float>::infinity()).max(1));
      torch::Tensor hit = (z.argmax(1) == to) & (z_other - z_own <= -o.kappa_);
      round_success |= hit;
      torch::Tensor l1 = (xk - x).abs().flatten(1).sum(1);
      torch::Tensor improve = hit & (l1 < best_l1);
      if (improve.any().item<bool>()) {
        torch::Tensor i = improve.nonzero().flatten();
        best_l1.index_copy_(0, i, l1.index_select(0, i));
        best.index_copy_(0, i, xk.index_select(0, i));
      }
    }
    upper = torch::where(round_success, torch::minimum(upper, c), upper);
    lower = torch::where(round_success, lower, torch::maximum(lower, c));
    c = torch::where(upper < 1e9, (lower + upper) / 2, c * 10);
  }
  return best;
}

}  // namespace

void CounterfactualOptions::validate() const {
  AEGIS_CHECK(to_ >= -1, InvalidArgument,
              "counterfactual: the class to move to is a class index or -1 (the runner-up), got " << to_);
  AEGIS_CHECK(norm_ == Norm::L2 || norm_ == Norm::L1, InvalidArgument,
              "counterfactual: norm must be l2 (C&W) or l1 (elastic net), got " << norm_name(norm_));
  AEGIS_CHECK(steps_ >= 1, InvalidArgument, "counterfactual: steps must be >= 1, got " << steps_);
  AEGIS_CHECK(binary_search_steps_ >= 1, InvalidArgument,
              "counterfactual: binary_search_steps must be >= 1, got " << binary_search_steps_);
  AEGIS_CHECK(initial_const_ > 0 && std::isfinite(initial_const_), InvalidArgument,
              "counterfactual: initial_const must be > 0, got " << initial_const_);
  AEGIS_CHECK(lr_ > 0 && std::isfinite(lr_), InvalidArgument, "counterfactual: lr must be > 0, got " << lr_);
  AEGIS_CHECK(beta_ >= 0 && std::isfinite(beta_), InvalidArgument, "counterfactual: beta must be >= 0, got " << beta_);
  AEGIS_CHECK(kappa_ >= 0 && std::isfinite(kappa_), InvalidArgument,
              "counterfactual: kappa must be >= 0, got " << kappa_);
}

nlohmann::json CounterfactualOptions::to_json() const {
  nlohmann::json j = {{"to", to_ < 0 ? nlohmann::json("runner-up") : nlohmann::json(to_)},
                      {"norm", norm_name(norm_)},
                      {"optimiser", norm_ == Norm::L2 ? "carlini-wagner-l2" : "elastic-net"},
                      {"steps", steps_},
                      {"binary_search_steps", binary_search_steps_},
                      {"initial_const", initial_const_},
                      {"lr", lr_},
                      {"kappa", kappa_},
                      {"seed", seed_}};
  if (norm_ == Norm::L1) j["beta"] = beta_;
  return j;
}

nlohmann::json CounterfactualResult::to_json() const {
  nlohmann::json j = attribution.to_json();
  for (int64_t i = 0; i < success.size(0); ++i) {
    auto& s = j["samples"][size_t(i)];
    s["to"] = to[i].item<int64_t>();
    s["counterfactual_predicted"] = predicted[i].item<int64_t>();
    s["success"] = success[i].item<bool>();
    s["l1"] = l1[i].item<double>();
    s["l2"] = l2[i].item<double>();
  }
  const int64_t n = success.size(0);
  j["success_rate"] = n > 0 ? success.to(torch::kDouble).mean().item<double>() : 0.0;
  if (success.any().item<bool>()) {
    j["median_l1_of_successes"] = l1.masked_select(success).median().item<double>();
    j["median_l2_of_successes"] = l2.masked_select(success).median().item<double>();
  }
  return j;
}

Counterfactual::Counterfactual(CounterfactualOptions options) : o_(options) { o_.validate(); }

torch::Tensor Counterfactual::destination(Classifier& model, const torch::Tensor& x, const torch::Tensor& from) const {
  const int64_t k = model.meta().num_classes;
  if (o_.to_ >= 0) {
    AEGIS_CHECK(o_.to_ < k, InvalidArgument,
                "counterfactual: class " << o_.to_ << " outside the model's " << k << " classes");
    return torch::full({x.size(0)}, o_.to_, torch::kLong);
  }
  return model.logits(x).scatter(1, from.view({-1, 1}), -std::numeric_limits<float>::infinity()).argmax(1);
}

torch::Tensor Counterfactual::search(Classifier& model, const torch::Tensor& x, const torch::Tensor& from,
                                     const torch::Tensor& to) {
  if (o_.norm_ == Norm::L1) return elastic_net_search(model, x, to, o_);
  CarliniWagner cw(CarliniWagnerOptions()
                       .steps(o_.steps_)
                       .binary_search_steps(o_.binary_search_steps_)
                       .initial_const(o_.initial_const_)
                       .kappa(o_.kappa_)
                       .lr(o_.lr_)
                       .abort_early(false)  // it judges the whole batch: a sample's result would depend on the others
                       .seed(o_.seed_));
  return cw.run(model, x, from, to).x_adv;
}

Attribution Counterfactual::attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) {
  const torch::Tensor to = destination(model, x, target);
  // A sample the model already puts in its destination needs no change.
  std::vector<int64_t> view(size_t(x.dim()), 1);
  view[0] = x.size(0);
  const torch::Tensor there = (model.predict(x).to(torch::kLong) == to).view(view);
  Attribution a;
  a.values = torch::where(there, x, search(model, x, target, to)) - x;
  return a;
}

CounterfactualResult Counterfactual::find(Classifier& model, const torch::Tensor& x, const torch::Tensor& from) {
  CounterfactualResult r;
  r.attribution = explain(model, x, from);
  const torch::Tensor xf = x.detach().to(torch::kFloat);
  r.to = destination(model, xf, r.attribution.target);
  r.counterfactual = (xf + r.attribution.values).clamp(model.meta().clip_min, model.meta().clip_max);
  r.attribution.values = r.counterfactual - xf;
  r.predicted = model.predict(r.counterfactual).to(torch::kLong);
  r.success = r.predicted == r.to;
  torch::Tensor d = r.attribution.values.flatten(1);
  r.l1 = d.abs().sum(1);
  r.l2 = d.norm(2, 1);
  return r;
}

}  // namespace aegis
