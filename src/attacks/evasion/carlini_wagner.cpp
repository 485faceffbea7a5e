#include "aegis/attacks/evasion/carlini_wagner.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"

namespace aegis {

CarliniWagner::CarliniWagner(CarliniWagnerOptions o) : o_(std::move(o)) {
  AEGIS_CHECK(o_.steps_ >= 1, InvalidArgument, "cw: steps must be >= 1, got " << o_.steps_);
  AEGIS_CHECK(o_.binary_search_steps_ >= 1, InvalidArgument, "cw: binary_search_steps must be >= 1");
  AEGIS_CHECK(o_.initial_const_ > 0, InvalidArgument, "cw: initial_const must be > 0");
  AEGIS_CHECK(o_.kappa_ >= 0, InvalidArgument, "cw: kappa must be >= 0");
  AEGIS_CHECK(o_.lr_ > 0, InvalidArgument, "cw: lr must be > 0");
}

std::unique_ptr<Attack> CarliniWagner::from_json(const nlohmann::json& params) {
  CarliniWagnerOptions o;
  ParamReader r(params, "cw");
  r.get("steps", o.steps_);
  r.get("binary_search_steps", o.binary_search_steps_);
  r.get("initial_const", o.initial_const_);
  r.get("kappa", o.kappa_);
  r.get("lr", o.lr_);
  r.get("abort_early", o.abort_early_);
  r.get_target_mode("targeted", o.target_mode_);
  r.get("seed", o.seed_);
  r.finish();
  return std::make_unique<CarliniWagner>(o);
}

nlohmann::json CarliniWagner::options_json() const {
  return {{"steps", o_.steps_},
          {"binary_search_steps", o_.binary_search_steps_},
          {"initial_const", o_.initial_const_},
          {"kappa", o_.kappa_},
          {"lr", o_.lr_},
          {"abort_early", o_.abort_early_},
          {"targeted", target_mode_name(o_.target_mode_)},
          {"seed", o_.seed_}};
}

torch::Tensor CarliniWagner::attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                                    const torch::Tensor& targets, int64_t& iterations) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max, range = hi - lo;
  const bool targeted = targets.defined();
  const int64_t n = x.size(0);
  const torch::Tensor& cls = targeted ? targets : y;
  const torch::Tensor cls1 = cls.unsqueeze(1);

  auto to_x = [&](const torch::Tensor& w) { return lo + range * (torch::tanh(w) + 1) * 0.5; };
  const torch::Tensor w0 = torch::atanh(((x - lo) / range * 2 - 1).clamp(-1, 1) * 0.999999);

  torch::Tensor c = torch::full({n}, o_.initial_const_);
  torch::Tensor lower = torch::zeros({n}), upper = torch::full({n}, 1e10);
  torch::Tensor best_l2 = torch::full({n}, std::numeric_limits<float>::infinity());
  torch::Tensor best = x.clone();
  const double b1 = 0.9, b2 = 0.999, adam_eps = 1e-8;
  int64_t total_steps = 0;

  for (int64_t round = 0; round < o_.binary_search_steps_; ++round) {
    torch::Tensor w = w0.clone();
    torch::Tensor m = torch::zeros_like(w), v = torch::zeros_like(w);
    torch::Tensor round_success = torch::zeros({n}, torch::kBool);
    double prev = std::numeric_limits<double>::infinity();
    const int64_t check_every = std::max<int64_t>(1, o_.steps_ / 10);
    for (int64_t step = 0; step < o_.steps_; ++step) {
      torch::Tensor wg = w.detach().requires_grad_(true);
      torch::Tensor xa = to_x(wg);
      torch::Tensor logits = model.forward(xa);
      torch::Tensor l2sq = (xa - x).pow(2).flatten(1).sum(1);
      torch::Tensor own = logits.gather(1, cls1).squeeze(1);
      torch::Tensor other = std::get<0>(logits.scatter(1, cls1, -std::numeric_limits<float>::infinity()).max(1));
      torch::Tensor margin = targeted ? other - own : own - other;  // <= -kappa: success with confidence kappa
      torch::Tensor f = (margin + o_.kappa_).clamp_min(0);
      torch::Tensor loss = l2sq + c * f;
      torch::Tensor total = loss.sum();
      torch::Tensor g = torch::autograd::grad({total}, {wg})[0].detach();
      ++total_steps;

      {
        torch::NoGradGuard ng;
        // Best so far: successful with confidence kappa and smaller than before.
        torch::Tensor pred = logits.detach().argmax(1);
        torch::Tensor hit = (targeted ? pred == targets : pred != y) & (margin.detach() <= -o_.kappa_);
        torch::Tensor l2 = l2sq.detach().sqrt();
        round_success |= hit;
        torch::Tensor improve = hit & (l2 < best_l2);
        if (improve.any().item<bool>()) {
          torch::Tensor i = improve.nonzero().flatten();
          best_l2.index_copy_(0, i, l2.index_select(0, i));
          best.index_copy_(0, i, xa.detach().index_select(0, i));
        }
        // Adam on w.
        const double t = double(step + 1);
        m.mul_(b1).add_(g, 1 - b1);
        v.mul_(b2).addcmul_(g, g, 1 - b2);
        torch::Tensor mh = m / (1 - std::pow(b1, t)), vh = v / (1 - std::pow(b2, t));
        w = w - o_.lr_ * mh / (vh.sqrt() + adam_eps);
      }
      if (o_.abort_early_ && (step + 1) % check_every == 0) {
        const double cur = total.item<double>();
        if (cur > prev * 0.9999) break;
        prev = cur;
      }
    }
    // Binary search on c, per sample.
    torch::Tensor s = round_success;
    upper = torch::where(s, torch::minimum(upper, c), upper);
    lower = torch::where(s, lower, torch::maximum(lower, c));
    torch::Tensor bounded = upper < 1e9;
    c = torch::where(bounded, (lower + upper) / 2, c * 10);
  }
  iterations = total_steps;
  return best;
}

}  // namespace aegis
