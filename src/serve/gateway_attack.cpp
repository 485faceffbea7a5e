#include "aegis/serve/gateway_attack.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis::serve {

namespace {

/// max_{j != y} z_j - z_y per sample: > 0 means misclassified.
torch::Tensor margin(const torch::Tensor& z, const torch::Tensor& y) {
  torch::Tensor own = z.gather(1, y.unsqueeze(1)).squeeze(1);
  torch::Tensor others = z.scatter(1, y.unsqueeze(1), -std::numeric_limits<float>::infinity());
  return std::get<0>(others.max(1)) - own;
}

/// A copy of delta [...] with one random window set to +-step per channel
/// (images [C, H, W]: a square of about p of the area; otherwise about p of
/// the values, at least one).
torch::Tensor propose(const torch::Tensor& delta, double p, double step, at::Generator& gen) {
  torch::Tensor d = delta.clone();
  auto uniform_int = [&](int64_t n) { return torch::randint(n, {1}, gen).item<int64_t>(); };
  auto sign = [&] { return torch::randint(2, {1}, gen).item<int64_t>() == 0 ? -step : step; };
  if (d.dim() == 3) {
    const int64_t C = d.size(0), H = d.size(1), W = d.size(2);
    const int64_t s = std::clamp<int64_t>(std::llround(std::sqrt(p * double(H * W))), 1, std::min(H, W));
    const int64_t r = uniform_int(H - s + 1), c = uniform_int(W - s + 1);
    for (int64_t ch = 0; ch < C; ++ch) d[ch].slice(0, r, r + s).slice(1, c, c + s).fill_(sign());
    return d;
  }
  torch::Tensor flat = d.view({-1});
  const int64_t n = flat.numel();
  const int64_t m = std::clamp<int64_t>(std::llround(p * double(n)), 1, n);
  torch::Tensor idx = torch::randperm(n, gen).slice(0, 0, m);
  for (int64_t i = 0; i < m; ++i) flat[idx[i].item<int64_t>()] = sign();
  return d;
}

}  // namespace

nlohmann::json GatewayAttackOptions::to_json() const {
  return {{"eps", eps_},       {"max_queries", max_queries_}, {"p_init", p_init_}, {"adaptive", adaptive_},
          {"shrink", shrink_}, {"grow", grow_},               {"seed", seed_}};
}

nlohmann::json GatewayAttackResult::to_json() const {
  const int64_t n = evaded.numel(), a = attacked.sum().item<int64_t>(), e = evaded.sum().item<int64_t>();
  const int64_t q = queries.sum().item<int64_t>(), r = refused.sum().item<int64_t>();
  return {{"samples", n},
          {"attacked", a},
          {"evaded", e},
          {"evasion_rate", a ? double(e) / double(a) : 0.0},
          {"queries", q},
          {"refused", r},
          {"refusal_rate", q ? double(r) / double(q) : 0.0},
          {"blocked", blocked},
          {"blocked_reason", blocked_reason}};
}

GatewayAttackResult gateway_attack(RemoteClassifier& remote, const torch::Tensor& x, const torch::Tensor& y,
                                   const GatewayAttackOptions& o) {
  AEGIS_CHECK(o.eps_ > 0, InvalidArgument, "gateway attack: eps must be > 0, got " << o.eps_);
  AEGIS_CHECK(o.max_queries_ >= 1, InvalidArgument, "gateway attack: max_queries must be >= 1");
  AEGIS_CHECK(o.p_init_ > 0 && o.p_init_ <= 1, InvalidArgument, "gateway attack: p_init must be in (0, 1]");
  AEGIS_CHECK(o.shrink_ > 0 && o.shrink_ < 1, InvalidArgument, "gateway attack: shrink must be in (0, 1)");
  AEGIS_CHECK(o.grow_ >= 1, InvalidArgument, "gateway attack: grow must be >= 1");
  AEGIS_CHECK(x.size(0) == y.size(0), ShapeMismatch, "gateway attack: x and y have different batch sizes");
  remote.check_input(x);
  const double lo = remote.meta().clip_min, hi = remote.meta().clip_max;
  const int64_t B = x.size(0);
  auto gen = make_generator(o.seed_, "gateway-attack");

  GatewayAttackResult r;
  r.x_adv = x.detach().clone();
  r.evaded = torch::zeros({B}, torch::kBool);
  r.queries = torch::zeros({B}, torch::kLong);
  r.refused = torch::zeros({B}, torch::kLong);
  torch::Tensor delta = torch::zeros_like(x);
  std::vector<double> step(size_t(B), o.eps_);

  auto record = [&](const RemoteAnswers& a, const torch::Tensor& idx) {
    for (int64_t j = 0; j < idx.numel(); ++j) {
      if (a.blocked_at >= 0 && j >= a.blocked_at) break;
      const int64_t i = idx[j].item<int64_t>();
      r.queries[i] += 1;
      if (a.refused[j].item<bool>()) r.refused[i] += 1;
    }
    if (a.blocked_at >= 0) {
      r.blocked = true;
      r.blocked_reason = a.blocked_reason;
    }
  };

  // Where each sample starts: its clean answer.
  torch::Tensor all = torch::arange(B);
  RemoteAnswers first = remote.answer(x);
  record(first, all);
  torch::Tensor best = torch::where(first.answered, margin(first.logits, y),
                                    torch::full({B}, -std::numeric_limits<float>::infinity()));
  r.attacked = first.answered & (best <= 0);
  r.evaded = torch::zeros({B}, torch::kBool);
  if (r.blocked) return r;

  for (int64_t it = 1; it < o.max_queries_; ++it) {
    torch::Tensor active = (r.attacked & ~r.evaded).nonzero().flatten();
    if (active.numel() == 0) break;
    // Square's schedule: windows shrink as the budget is spent.
    const double p = o.p_init_ * std::pow(0.5, std::floor(std::log2(1.0 + 10.0 * double(it) / double(o.max_queries_))));
    std::vector<torch::Tensor> proposals;
    for (int64_t j = 0; j < active.numel(); ++j) {
      const int64_t i = active[j].item<int64_t>();
      proposals.push_back(propose(delta[i], p, step[size_t(i)], gen));
    }
    torch::Tensor d = torch::stack(proposals);
    torch::Tensor x0 = x.index_select(0, active);
    torch::Tensor cand = (x0 + d).clamp(lo, hi);
    d = cand - x0;
    RemoteAnswers a = remote.answer(cand);
    record(a, active);
    const int64_t asked = a.blocked_at >= 0 ? a.blocked_at : active.numel();
    torch::Tensor m = margin(a.logits, y.index_select(0, active));
    for (int64_t j = 0; j < asked; ++j) {
      const int64_t i = active[j].item<int64_t>();
      if (a.refused[j].item<bool>()) {
        if (o.adaptive_) step[size_t(i)] *= o.shrink_;
        continue;
      }
      if (o.adaptive_) step[size_t(i)] = std::min(o.eps_, step[size_t(i)] * o.grow_);
      if (!a.answered[j].item<bool>()) continue;  // abstained: no class, no score
      const double mj = m[j].item<double>();
      if (mj > best[i].item<double>()) {
        best[i] = mj;
        delta[i] = d[j];
        r.x_adv[i] = cand[j];
        if (mj > 0) r.evaded[i] = true;
      }
    }
    if (r.blocked) break;
  }
  return r;
}

}  // namespace aegis::serve
