#include "aegis/attacks/attack.h"

#include <algorithm>
#include <cctype>
#include <chrono>

#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

Norm parse_norm(const std::string& s) {
  std::string v = s;
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (v == "linf" || v == "inf") return Norm::Linf;
  if (v == "l2") return Norm::L2;
  if (v == "l1") return Norm::L1;
  AEGIS_FAIL(InvalidArgument, "unknown norm '" << s << "' (use linf, l2 or l1)");
}

std::string norm_name(Norm n) {
  switch (n) {
    case Norm::Linf: return "linf";
    case Norm::L2: return "l2";
    case Norm::L1: return "l1";
  }
  return "?";
}

TargetMode parse_target_mode(const std::string& s) {
  if (s == "none" || s == "untargeted") return TargetMode::None;
  if (s == "random") return TargetMode::Random;
  if (s == "least-likely" || s == "least_likely") return TargetMode::LeastLikely;
  AEGIS_FAIL(InvalidArgument, "unknown target mode '" << s << "' (use none, random or least-likely)");
}

std::string target_mode_name(TargetMode m) {
  switch (m) {
    case TargetMode::None: return "none";
    case TargetMode::Random: return "random";
    case TargetMode::LeastLikely: return "least-likely";
  }
  return "?";
}

double AttackResult::success_rate() const {
  return samples() ? success.to(torch::kDouble).mean().item<double>() : 0.0;
}

nlohmann::json AttackResult::to_json(bool per_sample) const {
  nlohmann::json j = {{"samples", samples()}, {"success_rate", success_rate()}, {"queries", queries},
                      {"iterations", iterations}, {"seconds", seconds}};
  if (samples() > 0) {
    torch::Tensor s = success;
    auto stat = [&](const torch::Tensor& v) -> nlohmann::json {
      if (!s.any().item<bool>()) return nullptr;
      torch::Tensor sel = v.masked_select(s).to(torch::kDouble);
      return {{"mean", sel.mean().item<double>()}, {"median", sel.median().item<double>()},
              {"max", sel.max().item<double>()}};
    };
    j["norms_of_successes"] = {{"l0", stat(l0)}, {"l2", stat(l2)}, {"linf", stat(linf)}};
  }
  if (per_sample && samples() > 0) {
    auto vec_b = [](const torch::Tensor& t) {
      std::vector<bool> v;
      for (int64_t i = 0; i < t.size(0); ++i) v.push_back(t[i].item<bool>());
      return v;
    };
    auto vec_d = [](const torch::Tensor& t) {
      torch::Tensor c = t.to(torch::kDouble).contiguous();
      return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
    };
    j["per_sample"] = {{"success", vec_b(success)}, {"l2", vec_d(l2)}, {"linf", vec_d(linf)}, {"l0", vec_d(l0)}};
    if (targets.defined()) j["per_sample"]["targets"] = vec_d(targets);
  }
  return j;
}

torch::Tensor is_adversarial(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& targets) {
  torch::Tensor pred = logits.argmax(1);
  return targets.defined() ? pred == targets : pred != y;
}

std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> perturbation_norms(const torch::Tensor& delta) {
  torch::Tensor d = delta.detach().flatten(1).to(torch::kFloat);
  return {(d.abs() > 1e-7).sum(1).to(torch::kFloat), d.norm(2, 1), d.abs().amax(1)};
}

std::vector<int64_t> batch_view(const torch::Tensor& x) {
  std::vector<int64_t> v(size_t(x.dim()), 1);
  v[0] = x.size(0);
  return v;
}

torch::Tensor project(const torch::Tensor& x_adv, const torch::Tensor& x, Norm norm, double eps, double lo,
                      double hi) {
  torch::Tensor delta = x_adv - x;
  if (norm == Norm::Linf) {
    delta = delta.clamp(-eps, eps);
  } else {
    const int64_t p = norm == Norm::L2 ? 2 : 1;
    torch::Tensor n = delta.flatten(1).norm(p, 1).clamp_min(1e-12);
    torch::Tensor factor = (eps / n).clamp_max(1.0).view(batch_view(x));
    delta = delta * factor;
  }
  return (x + delta).clamp(lo, hi);
}

namespace {

torch::Tensor resolve_targets(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, TargetMode mode,
                              uint64_t seed) {
  const int64_t k = model.meta().num_classes;
  if (mode == TargetMode::Random) {
    auto gen = make_generator(seed, "attack-targets");
    torch::Tensor shift = torch::randint(1, k, {y.size(0)}, gen, torch::kLong);
    return (y + shift) % k;
  }
  // Least likely on the clean input (one query per sample, charged to the attack).
  return model.logits(x).argmin(1);
}

}  // namespace

AttackResult Attack::run_batched(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, int64_t batch_size,
                                 const torch::Tensor& targets) {
  AEGIS_CHECK(batch_size >= 1, InvalidArgument, "batch size must be >= 1, got " << batch_size);
  AEGIS_CHECK(x.defined() && x.dim() >= 1 && x.size(0) >= 1, InvalidArgument, "no samples to attack");
  const int64_t n = x.size(0);
  if (n <= batch_size) return run(model, x, y, targets);
  std::vector<AttackResult> parts;
  for (int64_t i = 0; i < n; i += batch_size) {
    const int64_t b = std::min(batch_size, n - i);
    parts.push_back(run(model, x.narrow(0, i, b), y.narrow(0, i, b),
                        targets.defined() ? targets.narrow(0, i, b) : torch::Tensor()));
  }
  auto cat = [&](torch::Tensor AttackResult::*field) {
    std::vector<torch::Tensor> v;
    for (auto& p : parts) v.push_back(p.*field);
    return torch::cat(v);
  };
  AttackResult r;
  r.x_adv = cat(&AttackResult::x_adv);
  r.success = cat(&AttackResult::success);
  r.l0 = cat(&AttackResult::l0);
  r.l2 = cat(&AttackResult::l2);
  r.linf = cat(&AttackResult::linf);
  r.adv_pred = cat(&AttackResult::adv_pred);
  if (parts[0].targets.defined()) r.targets = cat(&AttackResult::targets);
  for (auto& p : parts) {
    r.queries += p.queries;
    r.iterations = std::max(r.iterations, p.iterations);
    r.seconds += p.seconds;
  }
  return r;
}

AttackResult Attack::run(Classifier& model, const torch::Tensor& x_in, const torch::Tensor& y_in,
                         const torch::Tensor& targets_in) {
  const ModelMeta& meta = model.meta();
  model.check_input(x_in);
  AEGIS_CHECK(y_in.defined() && y_in.dim() == 1 && y_in.size(0) == x_in.size(0), InvalidArgument,
              name() << ": labels must be [batch] with one label per sample");
  AEGIS_CHECK(!needs_gradients() || model.has_gradients(), Unsupported,
              name() << " is a white-box attack and this model gives no gradients (use a black-box attack)");
  torch::Tensor x = x_in.detach().to(torch::kFloat);
  torch::Tensor y = y_in.detach().to(torch::kLong);
  AEGIS_CHECK(y.numel() == 0 || (y.min().item<int64_t>() >= 0 && y.max().item<int64_t>() < meta.num_classes),
              InvalidArgument, name() << ": labels out of range [0, " << meta.num_classes << ")");
  const double tol = 1e-5;
  AEGIS_CHECK(x.numel() == 0 || (x.min().item<double>() >= meta.clip_min - tol &&
                                 x.max().item<double>() <= meta.clip_max + tol),
              InvalidArgument,
              name() << ": inputs lie outside the model's valid range [" << meta.clip_min << ", " << meta.clip_max
                     << "]");

  auto start = std::chrono::steady_clock::now();
  const int64_t q0 = model.queries();
  torch::Tensor targets;
  if (targets_in.defined()) {
    targets = targets_in.detach().to(torch::kLong);
    AEGIS_CHECK(targets.dim() == 1 && targets.size(0) == x.size(0), InvalidArgument,
                name() << ": targets must be [batch]");
    AEGIS_CHECK(targets.numel() == 0 || (targets.min().item<int64_t>() >= 0 &&
                                         targets.max().item<int64_t>() < meta.num_classes),
                InvalidArgument, name() << ": targets out of range");
  } else if (target_mode() != TargetMode::None && x.size(0) > 0) {
    targets = resolve_targets(model, x, y, target_mode(), seed());
  }

  AttackResult r;
  torch::Tensor x_adv = x.size(0) > 0 ? attack(model, x, y, targets, r.iterations).detach() : x.clone();
  r.queries = model.queries() - q0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  // The invariants no attack may break, whatever its step sizes.
  AEGIS_CHECK(x_adv.sizes() == x.sizes(), Internal, name() << " returned a batch of another shape");
  AEGIS_CHECK(torch::isfinite(x_adv).all().item<bool>(), Internal, name() << " produced non-finite inputs");
  AEGIS_CHECK(x_adv.numel() == 0 || (x_adv.min().item<double>() >= meta.clip_min - tol &&
                                     x_adv.max().item<double>() <= meta.clip_max + tol),
              Internal, name() << " left the valid input range");
  auto [l0, l2, linf] = perturbation_norms(x_adv - x);
  if (auto b = budget()) {
    auto [norm, eps] = *b;
    torch::Tensor n = norm == Norm::Linf ? linf : norm == Norm::L2 ? l2 : (x_adv - x).flatten(1).abs().sum(1);
    AEGIS_CHECK(x.size(0) == 0 || n.max().item<double>() <= eps * (1 + 1e-4) + tol, Internal,
                name() << " left its " << norm_name(norm) << " ball of radius " << eps);
  }

  torch::Tensor logits = [&] {
    torch::NoGradGuard g;
    return x.size(0) ? model.logits(x_adv) : torch::zeros({0, meta.num_classes});
  }();
  // The verification pass above is ours, not the attacker's: r.queries was
  // taken before it (the model's own counter does include it).
  r.x_adv = x_adv;
  r.adv_pred = logits.argmax(1);
  r.success = is_adversarial(logits, y, targets);
  r.targets = targets;
  r.l0 = l0;
  r.l2 = l2;
  r.linf = linf;
  return r;
}

}  // namespace aegis
