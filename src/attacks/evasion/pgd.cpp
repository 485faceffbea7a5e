#include "aegis/attacks/evasion/pgd.h"

#include <cmath>

#include <torch/torch.h>

#include "aegis/attacks/registry.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"

namespace aegis {

namespace F = torch::nn::functional;

namespace {

/// The steepest-ascent direction of unit size in the given norm.
torch::Tensor step_direction(const torch::Tensor& g, Norm norm) {
  if (norm == Norm::Linf) return g.sign();
  torch::Tensor flat = g.flatten(1);
  if (norm == Norm::L2) return g / flat.norm(2, 1).clamp_min(1e-12).view(batch_view(g));
  // L1: move only the coordinates in the top 1% of |g| (a sparse steepest step), unit L1 mass.
  int64_t d = flat.size(1);
  int64_t k = std::max<int64_t>(1, d / 100);
  torch::Tensor thresh = std::get<0>(flat.abs().topk(k, 1)).select(1, k - 1).unsqueeze(1);
  torch::Tensor mask = (flat.abs() >= thresh).to(g.scalar_type());
  torch::Tensor dir = flat.sign() * mask;
  dir = dir / dir.abs().sum(1, true).clamp_min(1e-12);
  return dir.view(g.sizes());
}

}  // namespace

torch::Tensor random_start(const torch::Tensor& x, Norm norm, double eps, double lo, double hi, at::Generator& gen) {
  torch::Tensor delta;
  if (norm == Norm::Linf) {
    delta = (torch::rand(x.sizes(), gen) * 2 - 1) * eps;
  } else {
    torch::Tensor dir = torch::randn(x.sizes(), gen);
    int64_t p = norm == Norm::L2 ? 2 : 1;
    dir = dir / dir.flatten(1).norm(p, 1).clamp_min(1e-12).view(batch_view(x));
    torch::Tensor radius = torch::rand({x.size(0)}, gen).view(batch_view(x)) * eps;
    delta = dir * radius;
  }
  return project(x + delta.to(x.device()), x, norm, eps, lo, hi);
}

torch::Tensor adversarial_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& targets,
                               const std::string& loss) {
  const bool targeted = targets.defined();
  if (loss == "margin") {
    const torch::Tensor& cls = targeted ? targets : y;
    torch::Tensor own = logits.gather(1, cls.unsqueeze(1)).squeeze(1);
    torch::Tensor others = logits.scatter(1, cls.unsqueeze(1), -std::numeric_limits<float>::infinity());
    torch::Tensor best_other = std::get<0>(others.max(1));
    return targeted ? own - best_other : best_other - own;
  }
  auto opts = F::CrossEntropyFuncOptions().reduction(torch::kNone);
  return targeted ? -F::cross_entropy(logits, targets, opts) : F::cross_entropy(logits, y, opts);
}

PGD::PGD(PGDOptions o) : o_(std::move(o)) {
  AEGIS_CHECK(o_.eps_ > 0, InvalidArgument, "pgd: eps must be > 0, got " << o_.eps_);
  AEGIS_CHECK(o_.steps_ >= 1, InvalidArgument, "pgd: steps must be >= 1, got " << o_.steps_);
  AEGIS_CHECK(o_.restarts_ >= 1, InvalidArgument, "pgd: restarts must be >= 1, got " << o_.restarts_);
  AEGIS_CHECK(o_.step_size_ >= 0, InvalidArgument, "pgd: step size must be >= 0 (0 = automatic)");
  AEGIS_CHECK(o_.loss_ == "ce" || o_.loss_ == "margin", InvalidArgument,
              "pgd: loss must be 'ce' or 'margin', got '" << o_.loss_ << "'");
  AEGIS_CHECK(o_.schedule_ == "constant" || o_.schedule_ == "cosine", InvalidArgument,
              "pgd: schedule must be 'constant' or 'cosine', got '" << o_.schedule_ << "'");
}

std::unique_ptr<Attack> PGD::from_json(const nlohmann::json& params) {
  PGDOptions o(0.1);
  ParamReader r(params, "pgd");
  r.get("eps", o.eps_);
  r.get_norm("norm", o.norm_);
  r.get("steps", o.steps_);
  r.get("step_size", o.step_size_);
  r.get("random_start", o.random_start_);
  r.get("restarts", o.restarts_);
  r.get("loss", o.loss_);
  r.get("schedule", o.schedule_);
  r.get("early_stop", o.early_stop_);
  r.get_target_mode("targeted", o.target_mode_);
  r.get("seed", o.seed_);
  r.finish();
  return std::make_unique<PGD>(o);
}

nlohmann::json PGD::options_json() const {
  return {{"eps", o_.eps_},           {"norm", norm_name(o_.norm_)},
          {"steps", o_.steps_},       {"step_size", o_.step_size_},
          {"random_start", o_.random_start_}, {"restarts", o_.restarts_},
          {"loss", o_.loss_},         {"schedule", o_.schedule_},
          {"early_stop", o_.early_stop_}, {"targeted", target_mode_name(o_.target_mode_)},
          {"seed", o_.seed_}};
}

torch::Tensor PGD::attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                          const torch::Tensor& targets, int64_t& iterations) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const double alpha = o_.step_size_ > 0 ? o_.step_size_ : 2.5 * o_.eps_ / double(o_.steps_);
  const bool targeted = targets.defined();
  auto gen = make_generator(o_.seed_, "pgd-start");

  torch::Tensor best = x.clone();
  torch::Tensor found = torch::zeros({x.size(0)}, torch::kBool);
  torch::Tensor best_loss = torch::full({x.size(0)}, -std::numeric_limits<float>::infinity());

  auto record = [&](const torch::Tensor& idx, const torch::Tensor& xs) {
    best.index_copy_(0, idx, xs);
    found.index_fill_(0, idx, true);
  };

  for (int64_t restart = 0; restart < o_.restarts_; ++restart) {
    torch::Tensor idx = (~found).nonzero().flatten();
    if (idx.numel() == 0) break;
    torch::Tensor x0 = x.index_select(0, idx), y0 = y.index_select(0, idx);
    torch::Tensor t0 = targeted ? targets.index_select(0, idx) : torch::Tensor();
    torch::Tensor xa = o_.random_start_ ? random_start(x0, o_.norm_, o_.eps_, lo, hi, gen) : x0.clone();

    for (int64_t step = 0; step < o_.steps_ && idx.numel() > 0; ++step) {
      torch::Tensor xg = xa.detach().requires_grad_(true);
      torch::Tensor logits = model.forward(xg);
      torch::Tensor loss = adversarial_loss(logits, y0, t0, o_.loss_);
      torch::Tensor g = torch::autograd::grad({loss.sum()}, {xg})[0].detach();
      iterations = std::max(iterations, step + 1);

      torch::Tensor succ = is_adversarial(logits.detach(), y0, t0);
      if (succ.any().item<bool>()) {
        torch::Tensor s = succ.nonzero().flatten();
        record(idx.index_select(0, s), xa.index_select(0, s));
        if (o_.early_stop_) {
          torch::Tensor keep = (~succ).nonzero().flatten();
          idx = idx.index_select(0, keep);
          x0 = x0.index_select(0, keep);
          y0 = y0.index_select(0, keep);
          if (targeted) t0 = t0.index_select(0, keep);
          xa = xa.index_select(0, keep);
          g = g.index_select(0, keep);
          if (idx.numel() == 0) break;
        }
      }
      double a = alpha;
      if (o_.schedule_ == "cosine") a = alpha * (0.5 * (1 + std::cos(M_PI * double(step) / double(o_.steps_))) + 0.05);
      xa = project(xa + a * step_direction(g, o_.norm_), x0, o_.norm_, o_.eps_, lo, hi);
    }
    if (idx.numel() == 0) continue;
    // The last step's point has not been checked yet.
    torch::Tensor logits = model.logits(xa);
    torch::Tensor succ = is_adversarial(logits, y0, t0);
    torch::Tensor loss = adversarial_loss(logits, y0, t0, o_.loss_);
    torch::Tensor s = succ.nonzero().flatten();
    if (s.numel() > 0) record(idx.index_select(0, s), xa.index_select(0, s));
    // Samples still not broken keep the restart with the highest loss.
    torch::Tensor f = (~succ).nonzero().flatten();
    if (f.numel() > 0) {
      torch::Tensor fi = idx.index_select(0, f);
      torch::Tensor better = loss.index_select(0, f) > best_loss.index_select(0, fi);
      torch::Tensor bi = better.nonzero().flatten();
      if (bi.numel() > 0) {
        torch::Tensor gi = fi.index_select(0, bi);
        best.index_copy_(0, gi, xa.index_select(0, f).index_select(0, bi));
        best_loss.index_copy_(0, gi, loss.index_select(0, f).index_select(0, bi));
      }
    }
  }
  return best;
}

}  // namespace aegis
