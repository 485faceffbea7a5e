#pragma once
/// PGD adversarial training (Madry et al. 2018): each batch is replaced by
/// PGD adversarial examples crafted against the current model (in eval state,
/// so dropout and batch-norm statistics do not leak into the attack), and the
/// model is trained on those. Linf or L2; eps warm-up over the first epochs;
/// optionally a few cheap epochs of FGSM with a random start (Wong et al.
/// 2020) before the PGD epochs.
///
///   PGDATObjective at(PGDATOptions(0.1).steps(5).warmup_epochs(1));
///   train(*model, fit, &val, TrainOptions().epochs(4), &at);

#include <cstdint>
#include <string>

#include "aegis/attacks/attack.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis {

struct PGDATOptions {
  explicit PGDATOptions(double eps) : eps_(eps) {}
  double eps_;                ///< final perturbation budget, > 0
  Norm norm_ = Norm::Linf;    ///< Linf or L2
  int64_t steps_ = 7;         ///< PGD iterations per batch, >= 1
  double step_size_ = 0;      ///< 0 = 2.5 * eps / steps
  bool random_start_ = true;  ///< start inside the ball (PGD) or at x (BIM)
  double warmup_epochs_ = 0;  ///< eps grows linearly from 0 to eps over these epochs (fractional allowed), >= 0
  int64_t fast_epochs_ = 0;   ///< the first N epochs craft with one random-start FGSM step instead of PGD, >= 0
  double clean_weight_ = 0;   ///< loss = (1-w) CE(adv) + w CE(clean), w in [0, 1]

  PGDATOptions& eps(double v) { eps_ = v; return *this; }
  PGDATOptions& norm(Norm v) { norm_ = v; return *this; }
  PGDATOptions& steps(int64_t v) { steps_ = v; return *this; }
  PGDATOptions& step_size(double v) { step_size_ = v; return *this; }
  PGDATOptions& random_start(bool v) { random_start_ = v; return *this; }
  PGDATOptions& warmup_epochs(double v) { warmup_epochs_ = v; return *this; }
  PGDATOptions& fast_epochs(int64_t v) { fast_epochs_ = v; return *this; }
  PGDATOptions& clean_weight(double v) { clean_weight_ = v; return *this; }

  void validate() const;
  nlohmann::json to_json() const;
};

/// eps at this point of training under a linear warm-up over `warmup_epochs`.
double warmed_up_eps(double eps, double warmup_epochs, const StepContext& ctx);

class PGDATObjective : public Objective {
 public:
  explicit PGDATObjective(PGDATOptions options);
  std::string name() const override { return "pgd-at"; }
  /// Clean when the clean term is trained (clean_weight > 0), else adversarial.
  std::string train_accuracy_inputs() const override { return o_.clean_weight_ > 0 ? "clean" : "adversarial"; }
  torch::Tensor loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                     torch::Tensor& clean_logits) override;
  torch::Tensor adversarial_batch(ScriptClassifier& model, const Batch& batch, const StepContext& ctx) override;
  nlohmann::json describe() const override { return o_.to_json(); }

 private:
  PGDATOptions o_;
};

}  // namespace aegis
