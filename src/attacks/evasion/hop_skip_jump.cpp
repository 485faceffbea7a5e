#include "aegis/attacks/evasion/hop_skip_jump.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

HopSkipJump::HopSkipJump(HopSkipJumpOptions o) : o_(std::move(o)) {
  AEGIS_CHECK(o_.norm_ != Norm::L1, InvalidArgument, "hopskipjump: norm must be l2 or linf");
  AEGIS_CHECK(o_.steps_ >= 1, InvalidArgument, "hopskipjump: steps must be >= 1, got " << o_.steps_);
  AEGIS_CHECK(o_.init_evals_ >= 1 && o_.max_evals_ >= o_.init_evals_, InvalidArgument,
              "hopskipjump: need 1 <= init_evals <= max_evals");
  AEGIS_CHECK(o_.max_queries_ >= 0, InvalidArgument, "hopskipjump: max_queries must be >= 0");
  AEGIS_CHECK(o_.gamma_ > 0, InvalidArgument, "hopskipjump: gamma must be > 0");
  AEGIS_CHECK(o_.init_tries_ >= 1, InvalidArgument, "hopskipjump: init_tries must be >= 1");
}

std::unique_ptr<Attack> HopSkipJump::from_json(const nlohmann::json& params) {
  HopSkipJumpOptions o;
  ParamReader r(params, "hopskipjump");
  r.get_norm("norm", o.norm_);
  r.get("steps", o.steps_);
  r.get("init_evals", o.init_evals_);
  r.get("max_evals", o.max_evals_);
  r.get("max_queries", o.max_queries_);
  r.get("gamma", o.gamma_);
  r.get("init_tries", o.init_tries_);
  r.get_target_mode("targeted", o.target_mode_);
  r.get("seed", o.seed_);
  r.finish();
  return std::make_unique<HopSkipJump>(o);
}

nlohmann::json HopSkipJump::options_json() const {
  return {{"norm", norm_name(o_.norm_)},
          {"steps", o_.steps_},
          {"init_evals", o_.init_evals_},
          {"max_evals", o_.max_evals_},
          {"max_queries", o_.max_queries_},
          {"gamma", o_.gamma_},
          {"init_tries", o_.init_tries_},
          {"targeted", target_mode_name(o_.target_mode_)},
          {"seed", o_.seed_}};
}

torch::Tensor HopSkipJump::attack(Classifier& model, const torch::Tensor& x_in, const torch::Tensor& y,
                                  const torch::Tensor& targets, int64_t& iterations) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const bool targeted = targets.defined(), linf = o_.norm_ == Norm::Linf;
  const int64_t n = x_in.size(0);
  const auto sample_sizes = x_in.sizes().slice(1).vec();
  torch::Tensor x = x_in.flatten(1);
  const int64_t d = x.size(1);
  const double theta = linf ? o_.gamma_ / (double(d) * double(d)) : o_.gamma_ / (double(d) * std::sqrt(double(d)));
  auto gen = make_generator(o_.seed_, "hopskipjump");
  torch::Tensor spent = torch::zeros({n}, torch::kLong);  // queries per sample

  // The decision oracle: true where the model's label is adversarial. rows: which sample each input belongs to.
  auto phi = [&](const torch::Tensor& xs, const torch::Tensor& rows) {
    std::vector<int64_t> shape = {xs.size(0)};
    shape.insert(shape.end(), sample_sizes.begin(), sample_sizes.end());
    torch::Tensor out = torch::empty({xs.size(0)}, torch::kBool);
    for (int64_t s = 0; s < xs.size(0); s += 4096) {
      const int64_t len = std::min<int64_t>(4096, xs.size(0) - s);
      torch::Tensor part = xs.narrow(0, s, len);
      std::vector<int64_t> ps = shape;
      ps[0] = len;
      torch::Tensor pred = model.predict(part.reshape(ps));
      torch::Tensor r = rows.narrow(0, s, len);
      out.narrow(0, s, len).copy_(targeted ? pred == targets.index_select(0, r) : pred != y.index_select(0, r));
    }
    spent.index_add_(0, rows, torch::ones({rows.size(0)}, torch::kLong));
    return out;
  };
  auto dist = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return linf ? (a - b).abs().amax(1) : (a - b).norm(2, 1);
  };
  // Between x (not adversarial) and xa (adversarial): the boundary point on the adversarial side.
  auto project = [&](const torch::Tensor& x0, const torch::Tensor& xa, const torch::Tensor& alpha) {
    torch::Tensor a = alpha.unsqueeze(1);
    return linf ? torch::min(torch::max(xa, x0 - a), x0 + a) : (1 - a) * x0 + a * xa;
  };
  auto binary_search = [&](const torch::Tensor& x0, const torch::Tensor& xa, const torch::Tensor& rows) {
    torch::Tensor dists = dist(x0, xa);
    torch::Tensor high = linf ? dists.clone() : torch::ones({x0.size(0)});
    torch::Tensor thresh = linf ? torch::clamp_max(dists * theta, theta) : torch::full({x0.size(0)}, theta);
    torch::Tensor low = torch::zeros({x0.size(0)});
    for (int it = 0; it < 50; ++it) {
      torch::Tensor open = (high - low) > thresh;
      if (!open.any().item<bool>()) break;
      torch::Tensor o = open.nonzero().flatten();
      torch::Tensor mid = (high.index_select(0, o) + low.index_select(0, o)) / 2;
      torch::Tensor dec = phi(project(x0.index_select(0, o), xa.index_select(0, o), mid), rows.index_select(0, o));
      high.index_copy_(0, o, torch::where(dec, mid, high.index_select(0, o)));
      low.index_copy_(0, o, torch::where(dec, low.index_select(0, o), mid));
    }
    return project(x0, xa, high);
  };

  // 1. A starting point per sample.
  torch::Tensor start = x.clone(), have = torch::zeros({n}, torch::kBool);
  torch::Tensor all = torch::arange(n, torch::kLong);
  {
    torch::Tensor dec = phi(x, all);  // already adversarial: nothing to do
    start = x.clone();
    have = dec.clone();
  }
  if (targeted) {
    torch::Tensor pred = model.predict(x_in);
    spent += 1;
    for (int64_t i = 0; i < n; ++i) {
      if (have[i].item<bool>()) continue;
      torch::Tensor donors = (pred == targets[i]).nonzero().flatten();
      if (donors.numel() == 0) continue;
      start[i].copy_(x[donors[0].item<int64_t>()]);
      have[i] = true;
    }
  }
  for (int64_t t = 0; t < o_.init_tries_; ++t) {
    torch::Tensor need = (~have).nonzero().flatten();
    if (need.numel() == 0) break;
    torch::Tensor noise = torch::rand({need.size(0), d}, gen) * (hi - lo) + lo;
    torch::Tensor dec = phi(noise, need);
    torch::Tensor ok = dec.nonzero().flatten();
    if (ok.numel() == 0) continue;
    torch::Tensor gi = need.index_select(0, ok);
    start.index_copy_(0, gi, noise.index_select(0, ok));
    have.index_fill_(0, gi, true);
  }
  torch::Tensor already = dist(x, start) == 0;
  torch::Tensor idx = (have & ~already).nonzero().flatten();
  torch::Tensor best = start.clone();
  best.index_copy_(0, (~have).nonzero().flatten(), x.index_select(0, (~have).nonzero().flatten()));
  if (idx.numel() == 0) return best.view(x_in.sizes());

  torch::Tensor x0 = x.index_select(0, idx);
  torch::Tensor xb = binary_search(x0, start.index_select(0, idx), idx);
  torch::Tensor dprev = dist(x0, xb);

  for (int64_t t = 1; t <= o_.steps_ && idx.numel() > 0; ++t) {
    iterations = t;
    const int64_t m = idx.size(0);
    // 2. Gradient direction at the boundary from the signs of random probes.
    torch::Tensor delta =
        t == 1 ? torch::full({m}, 0.1 * (hi - lo)) : (linf ? double(d) : std::sqrt(double(d))) * theta * dprev;
    const int64_t evals = std::min<int64_t>(int64_t(double(o_.init_evals_) * std::sqrt(double(t))), o_.max_evals_);
    torch::Tensor grad = torch::empty({m, d});
    const int64_t chunk = std::max<int64_t>(1, 65536 / evals);
    for (int64_t s = 0; s < m; s += chunk) {
      const int64_t len = std::min(chunk, m - s);
      torch::Tensor rv = linf ? torch::rand({len, evals, d}, gen) * 2 - 1 : torch::randn({len, evals, d}, gen);
      rv = rv / rv.norm(2, 2, true).clamp_min(1e-12);
      torch::Tensor base = xb.narrow(0, s, len).unsqueeze(1);
      torch::Tensor dl = delta.narrow(0, s, len).view({len, 1, 1});
      torch::Tensor probe = (base + dl * rv).clamp(lo, hi);
      rv = (probe - base) / dl;
      torch::Tensor rows = idx.narrow(0, s, len).repeat_interleave(evals);
      torch::Tensor f = phi(probe.view({len * evals, d}), rows).view({len, evals}).to(torch::kFloat) * 2 - 1;
      torch::Tensor mean = f.mean(1, true);
      // All probes on one side: use the mean direction; else subtract the baseline.
      torch::Tensor fv = torch::where((mean.abs() == 1).expand_as(f), f, f - mean);
      grad.narrow(0, s, len).copy_((fv.unsqueeze(2) * rv).mean(1));
    }
    torch::Tensor update = linf ? grad.sign() : grad / grad.norm(2, 1, true).clamp_min(1e-12);
    // 3. Geometric step search: halve until the jump stays adversarial.
    torch::Tensor eps = dist(x0, xb) / std::sqrt(double(t));
    torch::Tensor pending = torch::ones({m}, torch::kBool);
    for (int h = 0; h < 25 && pending.any().item<bool>(); ++h) {
      torch::Tensor p = pending.nonzero().flatten();
      torch::Tensor cand =
          (xb.index_select(0, p) + eps.index_select(0, p).unsqueeze(1) * update.index_select(0, p)).clamp(lo, hi);
      torch::Tensor ok = phi(cand, idx.index_select(0, p));
      pending.index_fill_(0, p.masked_select(ok), false);
      eps.index_copy_(0, p, torch::where(ok, eps.index_select(0, p), eps.index_select(0, p) / 2));
    }
    torch::Tensor jumped = (xb + eps.unsqueeze(1) * update).clamp(lo, hi);
    jumped = torch::where(pending.unsqueeze(1), xb, jumped);  // no adversarial jump found: stay
    // 4. Back to the boundary.
    xb = binary_search(x0, jumped, idx);
    dprev = dist(x0, xb);
    best.index_copy_(0, idx, xb);
    if (o_.max_queries_ > 0) {
      torch::Tensor keep = (spent.index_select(0, idx) < o_.max_queries_).nonzero().flatten();
      idx = idx.index_select(0, keep);
      x0 = x0.index_select(0, keep);
      xb = xb.index_select(0, keep);
      dprev = dprev.index_select(0, keep);
    }
  }
  return best.view(x_in.sizes());
}

}  // namespace aegis
