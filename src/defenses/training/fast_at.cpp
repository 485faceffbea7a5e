#include "aegis/defenses/training/fast_at.h"

#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"
#include "aegis/defenses/training/pgd_at.h"

namespace aegis {

namespace F = torch::nn::functional;

void FastATOptions::validate() const {
  AEGIS_CHECK(eps_ > 0 && std::isfinite(eps_), InvalidArgument, "fast-at: eps must be > 0, got " << eps_);
  AEGIS_CHECK(step_size_ >= 0, InvalidArgument, "fast-at: step size must be >= 0 (0 = 1.25 eps)");
  AEGIS_CHECK(warmup_epochs_ >= 0, InvalidArgument, "fast-at: warm-up epochs must be >= 0");
}

nlohmann::json FastATOptions::to_json() const {
  return {{"eps", eps_},
          {"norm", "linf"},
          {"step_size", step_size_ > 0 ? step_size_ : 1.25 * eps_},
          {"warmup_epochs", warmup_epochs_},
          {"seed", seed_}};
}

torch::Tensor fgsm_random_start(ScriptClassifier& model, const torch::Tensor& x, const torch::Tensor& y, double eps,
                                double step_size, at::Generator& gen) {
  const double lo = model.meta().clip_min, hi = model.meta().clip_max;
  torch::Tensor delta = (torch::rand(x.sizes(), gen) * 2 - 1) * eps;
  torch::Tensor xs = (x + delta).clamp(lo, hi).detach().requires_grad_(true);
  torch::Tensor g;
  {
    torch::AutoGradMode on(true);
    torch::Tensor l = F::cross_entropy(model.forward(xs), y);
    g = torch::autograd::grad({l}, {xs})[0];
  }
  torch::NoGradGuard off;
  torch::Tensor d = (xs.detach() - x + step_size * g.sign()).clamp(-eps, eps);
  return (x + d).clamp(lo, hi);
}

FastATObjective::FastATObjective(FastATOptions options) : o_(std::move(options)) { o_.validate(); }

torch::Tensor FastATObjective::adversarial_batch(ScriptClassifier& model, const Batch& batch, const StepContext& ctx) {
  const double eps = warmed_up_eps(o_.eps_, o_.warmup_epochs_, ctx);
  // A stream per step (not one carried across steps) so a resumed run draws
  // what an uninterrupted one would.
  auto gen =
      make_generator(derive_seed(o_.seed_, "fast-at-" + std::to_string(ctx.epoch) + "-" + std::to_string(ctx.step)));
  const double alpha = (o_.step_size_ > 0 ? o_.step_size_ : 1.25 * o_.eps_) * eps / o_.eps_;
  torch::Tensor x_adv;
  model.set_training(false);
  try {
    x_adv = fgsm_random_start(model, batch.x, batch.y, eps, alpha, gen);
  } catch (...) {
    model.set_training(true);
    throw;
  }
  model.set_training(true);
  return x_adv;
}

torch::Tensor FastATObjective::loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                                    torch::Tensor& logits) {
  torch::Tensor x_adv = adversarial_batch(model, batch, ctx);
  logits = model.forward(x_adv);  // accuracy on the adversarial batch (train_accuracy_inputs)
  return F::cross_entropy(logits, batch.y, F::CrossEntropyFuncOptions().label_smoothing(ctx.label_smoothing));
}

}  // namespace aegis
