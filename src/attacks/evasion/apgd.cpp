#include "aegis/attacks/evasion/apgd.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

namespace F = torch::nn::functional;

namespace {

torch::Tensor flat_norm(const torch::Tensor& t) { return t.flatten(1).norm(2, 1); }

/// Projection onto the eps ball (per-sample radius tensor not needed: eps is shared) and the range.
torch::Tensor proj(const torch::Tensor& xa, const torch::Tensor& x, Norm norm, double eps, double lo, double hi) {
  return project(xa, x, norm, eps, lo, hi);
}

/// The state of one APGD run on a (shrinking) set of samples.
struct RunOutput {
  torch::Tensor adv;        ///< [n] successful point, or the highest-loss point
  torch::Tensor found;      ///< [n] bool
  torch::Tensor best_loss;  ///< [n] loss of adv for samples not found
};

}  // namespace

torch::Tensor dlr_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& targets) {
  const int64_t k = logits.size(1);
  torch::Tensor sorted = std::get<0>(logits.sort(1, /*descending=*/true));
  torch::Tensor zy = logits.gather(1, y.unsqueeze(1)).squeeze(1);
  if (targets.defined()) {
    AEGIS_CHECK(k >= 4, InvalidArgument, "targeted dlr loss needs at least 4 classes, the model has " << k);
    torch::Tensor zt = logits.gather(1, targets.unsqueeze(1)).squeeze(1);
    torch::Tensor denom = sorted.select(1, 0) - 0.5 * (sorted.select(1, 2) + sorted.select(1, 3)) + 1e-12;
    return -(zy - zt) / denom;
  }
  AEGIS_CHECK(k >= 3, InvalidArgument, "dlr loss needs at least 3 classes, the model has " << k);
  torch::Tensor others = logits.scatter(1, y.unsqueeze(1), -std::numeric_limits<float>::infinity());
  torch::Tensor best_other = std::get<0>(others.max(1));
  torch::Tensor denom = sorted.select(1, 0) - sorted.select(1, 2) + 1e-12;
  return -(zy - best_other) / denom;
}

std::vector<int64_t> apgd_checkpoints(int64_t steps) {
  std::vector<double> p = {0.0, 0.22};
  while (true) {
    size_t j = p.size() - 1;
    double next = p[j] + std::max(p[j] - p[j - 1] - 0.03, 0.06);
    if (next > 1.0) break;
    p.push_back(next);
  }
  std::vector<int64_t> w;
  for (double v : p) {
    int64_t c = int64_t(std::ceil(v * double(steps) - 1e-9));
    if (c <= 0 || c > steps) continue;
    if (w.empty() || c > w.back()) w.push_back(c);
  }
  return w;
}

APGD::APGD(APGDOptions o) : o_(std::move(o)) {
  AEGIS_CHECK(o_.eps_ > 0, InvalidArgument, name() << ": eps must be > 0, got " << o_.eps_);
  AEGIS_CHECK(o_.norm_ != Norm::L1, InvalidArgument, name() << ": norm must be linf or l2");
  AEGIS_CHECK(o_.steps_ >= 1, InvalidArgument, name() << ": steps must be >= 1, got " << o_.steps_);
  AEGIS_CHECK(o_.restarts_ >= 1, InvalidArgument, name() << ": restarts must be >= 1, got " << o_.restarts_);
  AEGIS_CHECK(o_.loss_ == "ce" || o_.loss_ == "dlr", InvalidArgument,
              name() << ": loss must be 'ce' or 'dlr', got '" << o_.loss_ << "'");
  AEGIS_CHECK(o_.target_classes_ >= 0, InvalidArgument, name() << ": target_classes must be >= 0");
  AEGIS_CHECK(o_.target_classes_ == 0 || o_.target_mode_ == TargetMode::None, InvalidArgument,
              "apgd-t picks its own targets (the most likely wrong classes); do not also set 'targeted'");
  AEGIS_CHECK(o_.rho_ > 0 && o_.rho_ <= 1, InvalidArgument, name() << ": rho must be in (0, 1]");
  AEGIS_CHECK(o_.momentum_ > 0 && o_.momentum_ <= 1, InvalidArgument, name() << ": momentum must be in (0, 1]");
  AEGIS_CHECK(o_.eot_samples_ >= 1, InvalidArgument, name() << ": eot_samples must be >= 1");
}

namespace {
void read_common(ParamReader& r, APGDOptions& o) {
  r.get("eps", o.eps_);
  r.get_norm("norm", o.norm_);
  r.get("steps", o.steps_);
  r.get("restarts", o.restarts_);
  r.get("loss", o.loss_);
  r.get("rho", o.rho_);
  r.get("momentum", o.momentum_);
  r.get("eot_samples", o.eot_samples_);
  r.get("early_stop", o.early_stop_);
  r.get("seed", o.seed_);
}
}  // namespace

std::unique_ptr<Attack> APGD::from_json(const nlohmann::json& params) {
  APGDOptions o(0.1);
  ParamReader r(params, "apgd");
  read_common(r, o);
  r.get_target_mode("targeted", o.target_mode_);
  r.finish();
  return std::make_unique<APGD>(o);
}

std::unique_ptr<Attack> APGD::from_json_targeted(const nlohmann::json& params) {
  APGDOptions o(0.1);
  o.loss("dlr").target_classes(9);
  ParamReader r(params, "apgd-t");
  read_common(r, o);
  r.get("target_classes", o.target_classes_);
  r.finish();
  AEGIS_CHECK(o.target_classes_ >= 1, InvalidArgument, "apgd-t: target_classes must be >= 1");
  return std::make_unique<APGD>(o);
}

nlohmann::json APGD::options_json() const {
  nlohmann::json j = {{"eps", o_.eps_},
                      {"norm", norm_name(o_.norm_)},
                      {"steps", o_.steps_},
                      {"restarts", o_.restarts_},
                      {"loss", o_.loss_},
                      {"rho", o_.rho_},
                      {"momentum", o_.momentum_},
                      {"eot_samples", o_.eot_samples_},
                      {"early_stop", o_.early_stop_},
                      {"seed", o_.seed_}};
  if (o_.target_classes_ > 0)
    j["target_classes"] = o_.target_classes_;
  else
    j["targeted"] = target_mode_name(o_.target_mode_);
  return j;
}

torch::Tensor APGD::attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                           const torch::Tensor& targets, int64_t& iterations) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const double eps = o_.eps_;
  const Norm norm = o_.norm_;
  const std::vector<int64_t> checkpoints = apgd_checkpoints(o_.steps_);
  auto gen = make_generator(o_.seed_, "apgd-start");

  // Loss, logits and (EOT-averaged) input gradient at xa.
  auto evaluate = [&](const torch::Tensor& xa, const torch::Tensor& yy, const torch::Tensor& tl) {
    torch::Tensor grad = torch::zeros_like(xa), logits, loss;
    for (int64_t e = 0; e < o_.eot_samples_; ++e) {
      torch::Tensor xg = xa.detach().requires_grad_(true);
      logits = model.forward(xg);
      loss = o_.loss_ == "dlr" ? dlr_loss(logits, yy, tl) : adversarial_loss(logits, yy, tl, "ce");
      grad += torch::autograd::grad({loss.sum()}, {xg})[0].detach();
    }
    if (o_.eot_samples_ > 1) grad /= double(o_.eot_samples_);
    return std::make_tuple(logits.detach(), loss.detach(), grad);
  };

  // One APGD run. `tl`: targets of the loss (undefined: untargeted loss);
  // `ts`: targets of success (undefined: any misclassification).
  auto run_once = [&](const torch::Tensor& xs, const torch::Tensor& ys, const torch::Tensor& tl_in,
                      const torch::Tensor& ts_in) {
    const int64_t n = xs.size(0);
    RunOutput out{xs.clone(), torch::zeros({n}, torch::kBool),
                  torch::full({n}, -std::numeric_limits<float>::infinity())};
    torch::Tensor idx = torch::arange(n, torch::kLong);
    torch::Tensor x0 = xs, y0 = ys, tl = tl_in, ts = ts_in;

    torch::Tensor start;
    if (norm == Norm::Linf) {
      torch::Tensor t = torch::rand(x0.sizes(), gen) * 2 - 1;
      start = x0 + eps * t / t.flatten(1).abs().amax(1).clamp_min(1e-12).view(batch_view(t));
    } else {
      torch::Tensor t = torch::randn(x0.sizes(), gen);
      start = x0 + eps * t / flat_norm(t).clamp_min(1e-12).view(batch_view(t));
    }
    torch::Tensor xa = proj(start, x0, norm, eps, lo, hi);
    torch::Tensor logits, loss, grad;
    std::tie(logits, loss, grad) = evaluate(xa, y0, tl);

    std::vector<torch::Tensor*> state;
    torch::Tensor x_prev, x_best, grad_best, loss_best, loss_prev, loss_best_last, eta, inc, reduced_last;
    auto compact = [&](const torch::Tensor& succ) {
      if (!succ.any().item<bool>()) return;
      torch::Tensor s = succ.nonzero().flatten();
      torch::Tensor gi = idx.index_select(0, s);
      out.adv.index_copy_(0, gi, xa.index_select(0, s));
      out.found.index_fill_(0, gi, true);
      if (!o_.early_stop_) return;
      torch::Tensor keep = (~succ).nonzero().flatten();
      for (torch::Tensor* t : state)
        if (t->defined()) *t = t->index_select(0, keep);
    };
    state = {&idx,  &x0,     &y0,          &tl,        &ts,        &xa,        &grad,
             &loss, &x_prev, &x_best,      &grad_best, &loss_best, &loss_prev, &loss_best_last,
             &eta,  &inc,    &reduced_last};

    auto success = [&](const torch::Tensor& lg) {
      torch::Tensor pred = lg.argmax(1);
      return ts.defined() ? pred == ts : pred != y0;
    };
    // With early stopping off, successes are recorded but samples keep going:
    // only record each sample's first success to keep a valid point.
    auto succ_mask = [&](const torch::Tensor& lg) {
      torch::Tensor s = success(lg);
      if (!o_.early_stop_) s = s & ~out.found.index_select(0, idx);
      return s;
    };
    compact(succ_mask(logits));

    x_prev = xa.clone();
    x_best = xa.clone();
    grad_best = grad.clone();
    loss_best = loss.clone();
    loss_prev = loss.clone();
    loss_best_last = loss.clone();
    eta = torch::full({idx.size(0)}, 2.0 * eps);
    inc = torch::zeros({idx.size(0)}, torch::kLong);
    reduced_last = torch::zeros({idx.size(0)}, torch::kBool);
    size_t next_cp = 1;  // checkpoints[0] is the first (0.22 N); compare with previous
    int64_t prev_cp = 0;

    for (int64_t k = 0; k < o_.steps_ && idx.numel() > 0; ++k) {
      {
        torch::NoGradGuard g;
        const double a = k == 0 ? 1.0 : o_.momentum_;
        torch::Tensor e = eta.view(batch_view(xa));
        torch::Tensor dir =
            norm == Norm::Linf ? grad.sign() : grad / flat_norm(grad).clamp_min(1e-12).view(batch_view(grad));
        torch::Tensor z = proj(xa + e * dir, x0, norm, eps, lo, hi);
        torch::Tensor xn = proj(xa + a * (z - xa) + (1 - a) * (xa - x_prev), x0, norm, eps, lo, hi);
        x_prev = xa;
        xa = xn;
      }
      std::tie(logits, loss, grad) = evaluate(xa, y0, tl);
      iterations = std::max(iterations, k + 1);
      inc += (loss > loss_prev).to(torch::kLong);
      loss_prev = loss;
      torch::Tensor better = loss > loss_best;
      if (better.any().item<bool>()) {
        torch::Tensor b = better.nonzero().flatten();
        x_best.index_copy_(0, b, xa.index_select(0, b));
        grad_best.index_copy_(0, b, grad.index_select(0, b));
        loss_best.index_copy_(0, b, loss.index_select(0, b));
      }
      compact(succ_mask(logits));
      if (idx.numel() == 0) break;

      const int64_t cp = next_cp - 1 < checkpoints.size() ? checkpoints[next_cp - 1] : -1;
      if (k + 1 == cp) {
        const int64_t h = cp - prev_cp;
        torch::Tensor osc = inc.to(torch::kDouble) < o_.rho_ * double(h);
        torch::Tensor stalled = (~reduced_last) & (loss_best_last >= loss_best);
        torch::Tensor reduce = osc | stalled;
        reduced_last = reduce;
        loss_best_last = loss_best.clone();
        if (reduce.any().item<bool>()) {
          torch::Tensor r = reduce.nonzero().flatten();
          eta.index_put_({r}, eta.index_select(0, r) / 2.0);
          xa.index_copy_(0, r, x_best.index_select(0, r));
          x_prev.index_copy_(0, r, x_best.index_select(0, r));
          grad.index_copy_(0, r, grad_best.index_select(0, r));
        }
        inc.zero_();
        prev_cp = cp;
        ++next_cp;
      }
    }
    // Samples never broken leave with their highest-loss point.
    if (idx.numel() > 0) {
      torch::Tensor nf = (~out.found.index_select(0, idx)).nonzero().flatten();
      if (nf.numel() > 0) {
        torch::Tensor gi = idx.index_select(0, nf);
        out.adv.index_copy_(0, gi, x_best.index_select(0, nf));
        out.best_loss.index_copy_(0, gi, loss_best.index_select(0, nf));
      }
    }
    return out;
  };

  const int64_t n = x.size(0);
  torch::Tensor best = x.clone();
  torch::Tensor found = torch::zeros({n}, torch::kBool);
  torch::Tensor best_loss = torch::full({n}, -std::numeric_limits<float>::infinity());

  // The runs: one per restart, and for APGD-T one per (target rank, restart).
  std::vector<int64_t> ranks = {0};
  torch::Tensor order;
  if (o_.target_classes_ > 0) {
    const int64_t k = model.meta().num_classes;
    AEGIS_CHECK(o_.target_classes_ <= k - 1, InvalidArgument,
                "apgd-t: target_classes " << o_.target_classes_ << " exceeds the " << k - 1 << " wrong classes");
    order = std::get<1>(model.logits(x).sort(1, /*descending=*/true));
    ranks.clear();
    for (int64_t t = 1; t <= o_.target_classes_; ++t) ranks.push_back(t);
  }
  for (int64_t rank : ranks) {
    for (int64_t restart = 0; restart < o_.restarts_; ++restart) {
      torch::Tensor todo = (~found).nonzero().flatten();
      if (todo.numel() == 0) break;
      torch::Tensor xs = x.index_select(0, todo), ys = y.index_select(0, todo);
      torch::Tensor tl, ts;
      if (o_.target_classes_ > 0) {
        tl = order.index_select(0, todo).select(1, rank);
      } else if (targets.defined()) {
        tl = targets.index_select(0, todo);
        ts = tl;
      }
      RunOutput r = run_once(xs, ys, tl, ts);
      torch::Tensor f = r.found.nonzero().flatten();
      if (f.numel() > 0) {
        torch::Tensor gi = todo.index_select(0, f);
        best.index_copy_(0, gi, r.adv.index_select(0, f));
        found.index_fill_(0, gi, true);
      }
      torch::Tensor better = (~r.found) & (r.best_loss > best_loss.index_select(0, todo));
      // Compare losses only within the same loss (ranks differ in targets: keep the latest best).
      torch::Tensor b = better.nonzero().flatten();
      if (b.numel() > 0) {
        torch::Tensor gi = todo.index_select(0, b);
        best.index_copy_(0, gi, r.adv.index_select(0, b));
        best_loss.index_copy_(0, gi, r.best_loss.index_select(0, b));
      }
    }
  }
  return best;
}

}  // namespace aegis
