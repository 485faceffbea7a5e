#include "aegis/defenses/training/trades.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"
#include "aegis/defenses/training/pgd_at.h"

namespace aegis {

namespace F = torch::nn::functional;

void TRADESOptions::validate() const {
  AEGIS_CHECK(eps_ > 0 && std::isfinite(eps_), InvalidArgument, "trades: eps must be > 0, got " << eps_);
  AEGIS_CHECK(norm_ == Norm::Linf || norm_ == Norm::L2, InvalidArgument, "trades: norm must be linf or l2");
  AEGIS_CHECK(beta_ >= 0 && std::isfinite(beta_), InvalidArgument, "trades: beta must be >= 0, got " << beta_);
  AEGIS_CHECK(steps_ >= 1, InvalidArgument, "trades: steps must be >= 1, got " << steps_);
  AEGIS_CHECK(step_size_ >= 0, InvalidArgument, "trades: step size must be >= 0 (0 = automatic)");
  AEGIS_CHECK(warmup_epochs_ >= 0, InvalidArgument, "trades: warm-up epochs must be >= 0");
}

nlohmann::json TRADESOptions::to_json() const {
  return {{"eps", eps_},
          {"norm", norm_name(norm_)},
          {"beta", beta_},
          {"steps", steps_},
          {"step_size", step_size_ > 0 ? step_size_ : 2.5 * eps_ / double(steps_)},
          {"warmup_epochs", warmup_epochs_},
          {"seed", seed_}};
}

TRADESObjective::TRADESObjective(TRADESOptions options) : o_(std::move(options)) { o_.validate(); }

namespace {
/// Per-batch KL(p_clean || p_adv) summed over classes, averaged over the batch.
torch::Tensor kl(const torch::Tensor& clean_logits, const torch::Tensor& adv_logits) {
  torch::Tensor p = torch::softmax(clean_logits, 1);
  return (p * (torch::log_softmax(clean_logits, 1) - torch::log_softmax(adv_logits, 1))).sum(1).mean();
}
}  // namespace

torch::Tensor TRADESObjective::adversarial_batch(ScriptClassifier& model, const Batch& batch, const StepContext& ctx) {
  const double eps = warmed_up_eps(o_.eps_, o_.warmup_epochs_, ctx);
  // A stream per step (not one carried across steps) so a resumed run draws
  // what an uninterrupted one would.
  auto gen =
      make_generator(derive_seed(o_.seed_, "trades-" + std::to_string(ctx.epoch) + "-" + std::to_string(ctx.step)));
  const double alpha = (o_.step_size_ > 0 ? o_.step_size_ : 2.5 * o_.eps_ / double(o_.steps_)) * eps / o_.eps_;
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  const torch::Tensor& x = batch.x;
  torch::Tensor x_adv;
  model.set_training(false);
  try {
    torch::Tensor target = model.logits(x);  // fixed clean prediction of the inner maximisation
    x_adv = project(x + 0.001 * torch::randn(x.sizes(), gen), x, o_.norm_, eps, lo, hi);
    for (int64_t s = 0; s < o_.steps_; ++s) {
      torch::Tensor xg = x_adv.detach().requires_grad_(true);
      torch::Tensor g;
      {
        torch::AutoGradMode on(true);
        g = torch::autograd::grad({kl(target, model.forward(xg))}, {xg})[0];
      }
      torch::NoGradGuard off;
      std::vector<int64_t> per_sample(size_t(g.dim()), 1);
      per_sample[0] = g.size(0);
      torch::Tensor dir =
          o_.norm_ == Norm::Linf ? g.sign() : g / g.flatten(1).norm(2, 1).clamp_min(1e-12).view(per_sample);
      x_adv = project(x_adv + alpha * dir, x, o_.norm_, eps, lo, hi);
    }
  } catch (...) {
    model.set_training(true);
    throw;
  }
  model.set_training(true);
  return x_adv;
}

torch::Tensor TRADESObjective::loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                                    torch::Tensor& clean_logits) {
  torch::Tensor x_adv = adversarial_batch(model, batch, ctx);
  const torch::Tensor& x = batch.x;
  clean_logits = model.forward(x);
  torch::Tensor natural =
      F::cross_entropy(clean_logits, batch.y, F::CrossEntropyFuncOptions().label_smoothing(ctx.label_smoothing));
  return natural + o_.beta_ * kl(clean_logits, model.forward(x_adv.detach()));
}

}  // namespace aegis
