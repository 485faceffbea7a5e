#pragma once
/// Fast adversarial training (Wong, Rice and Kolter 2020, "Fast is better
/// than free"): one FGSM step of size alpha (default 1.25 eps) from a
/// uniformly random start inside the Linf ball, then training on that point.
/// About twice the cost of standard training instead of (steps + 1) times.
///
///   FastATObjective fast(FastATOptions(0.1));
///   train(*model, fit, &val, TrainOptions().epochs(5).schedule("onecycle"), &fast);

#include <cstdint>

#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis {

struct FastATOptions {
  explicit FastATOptions(double eps) : eps_(eps) {}
  double eps_;                ///< Linf budget, > 0
  double step_size_ = 0;      ///< 0 = 1.25 * eps (the paper's choice)
  double warmup_epochs_ = 0;  ///< eps grows linearly from 0 over these epochs, >= 0
  uint64_t seed_ = 0;         ///< random starts

  FastATOptions& eps(double v) { eps_ = v; return *this; }
  FastATOptions& step_size(double v) { step_size_ = v; return *this; }
  FastATOptions& warmup_epochs(double v) { warmup_epochs_ = v; return *this; }
  FastATOptions& seed(uint64_t v) { seed_ = v; return *this; }

  void validate() const;
  nlohmann::json to_json() const;
};

/// One random-start FGSM example per sample (model in its evaluation state).
/// Exposed for PGD-AT's fast warm-start epochs.
torch::Tensor fgsm_random_start(ScriptClassifier& model, const torch::Tensor& x, const torch::Tensor& y, double eps,
                                double step_size, at::Generator& gen);

class FastATObjective : public Objective {
 public:
  explicit FastATObjective(FastATOptions options);
  std::string name() const override { return "fast-at"; }
  std::string train_accuracy_inputs() const override { return "adversarial"; }
  torch::Tensor loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                     torch::Tensor& clean_logits) override;
  torch::Tensor adversarial_batch(ScriptClassifier& model, const Batch& batch, const StepContext& ctx) override;
  nlohmann::json describe() const override { return o_.to_json(); }

 private:
  FastATOptions o_;
};

}  // namespace aegis
