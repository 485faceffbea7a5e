#include "aegis/defenses/training/pgd_at.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/fast_at.h"

namespace aegis {

namespace F = torch::nn::functional;

void PGDATOptions::validate() const {
  AEGIS_CHECK(eps_ > 0 && std::isfinite(eps_), InvalidArgument, "pgd-at: eps must be > 0, got " << eps_);
  AEGIS_CHECK(norm_ == Norm::Linf || norm_ == Norm::L2, InvalidArgument, "pgd-at: norm must be linf or l2");
  AEGIS_CHECK(steps_ >= 1, InvalidArgument, "pgd-at: steps must be >= 1, got " << steps_);
  AEGIS_CHECK(step_size_ >= 0, InvalidArgument, "pgd-at: step size must be >= 0 (0 = automatic)");
  AEGIS_CHECK(warmup_epochs_ >= 0, InvalidArgument, "pgd-at: warm-up epochs must be >= 0");
  AEGIS_CHECK(fast_epochs_ >= 0, InvalidArgument, "pgd-at: fast epochs must be >= 0");
  AEGIS_CHECK(fast_epochs_ == 0 || norm_ == Norm::Linf, InvalidArgument, "pgd-at: fast epochs need the linf norm");
  AEGIS_CHECK(clean_weight_ >= 0 && clean_weight_ <= 1, InvalidArgument, "pgd-at: clean weight must be in [0, 1]");
}

nlohmann::json PGDATOptions::to_json() const {
  return {{"eps", eps_},
          {"norm", norm_name(norm_)},
          {"steps", steps_},
          {"step_size", step_size_ > 0 ? step_size_ : 2.5 * eps_ / double(steps_)},
          {"random_start", random_start_},
          {"warmup_epochs", warmup_epochs_},
          {"fast_epochs", fast_epochs_},
          {"clean_weight", clean_weight_}};
}

double warmed_up_eps(double eps, double warmup_epochs, const StepContext& ctx) {
  if (warmup_epochs <= 0) return eps;
  double done = double(ctx.epoch) + double(ctx.step) / double(std::max<int64_t>(ctx.steps, 1));
  return eps * std::min(1.0, (done + 1.0 / double(std::max<int64_t>(ctx.steps, 1))) / warmup_epochs);
}

PGDATObjective::PGDATObjective(PGDATOptions options) : o_(std::move(options)) { o_.validate(); }

torch::Tensor PGDATObjective::adversarial_batch(ScriptClassifier& model, const Batch& batch, const StepContext& ctx) {
  const double eps = warmed_up_eps(o_.eps_, o_.warmup_epochs_, ctx);
  const uint64_t seed = derive_seed(ctx.epoch * 1000003 + ctx.step, "pgd-at");
  torch::Tensor x_adv;
  model.set_training(false);  // craft against the evaluation-state model
  try {
    if (ctx.epoch < o_.fast_epochs_) {
      auto gen = make_generator(seed, "fast");
      x_adv = fgsm_random_start(model, batch.x, batch.y, eps, 1.25 * eps, gen);
    } else {
      const double alpha = (o_.step_size_ > 0 ? o_.step_size_ : 2.5 * o_.eps_ / double(o_.steps_)) * eps / o_.eps_;
      PGD pgd(PGDOptions(eps)
                  .norm(o_.norm_)
                  .steps(o_.steps_)
                  .step_size(alpha)
                  .random_start(o_.random_start_)
                  .early_stop(false)
                  .seed(seed));
      x_adv = pgd.run(model, batch.x, batch.y).x_adv;
    }
  } catch (...) {
    model.set_training(true);
    throw;
  }
  model.set_training(true);
  return x_adv;
}

torch::Tensor PGDATObjective::loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                                   torch::Tensor& clean_logits) {
  torch::Tensor x_adv = adversarial_batch(model, batch, ctx);
  auto ce = F::CrossEntropyFuncOptions().label_smoothing(ctx.label_smoothing);
  torch::Tensor adv_logits = model.forward(x_adv.detach());
  torch::Tensor l = F::cross_entropy(adv_logits, batch.y, ce);
  if (o_.clean_weight_ > 0) {
    clean_logits = model.forward(batch.x);
    l = (1 - o_.clean_weight_) * l + o_.clean_weight_ * F::cross_entropy(clean_logits, batch.y, ce);
  } else {
    clean_logits = adv_logits;  // accuracy on the adversarial batch (train_accuracy_inputs)
  }
  return l;
}

}  // namespace aegis
