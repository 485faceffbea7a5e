#pragma once
/// TRADES (Zhang et al. 2019): minimise CE(f(x), y) + beta * KL(f(x) || f(x'))
/// where x' maximises the KL term inside the eps ball (found with sign-gradient
/// steps from x plus small Gaussian noise, the model in eval state). beta
/// trades clean accuracy (small) for robustness (large; the paper uses 6).
///
///   TRADESObjective trades(TRADESOptions(0.1).beta(6));
///   train(*model, fit, &val, TrainOptions().epochs(5), &trades);

#include <cstdint>

#include "aegis/attacks/attack.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"

namespace aegis {

struct TRADESOptions {
  explicit TRADESOptions(double eps) : eps_(eps) {}
  double eps_;                ///< budget of the inner maximisation, > 0
  Norm norm_ = Norm::Linf;    ///< Linf or L2
  double beta_ = 6.0;         ///< weight of the robustness (KL) term, >= 0
  int64_t steps_ = 7;         ///< inner steps, >= 1
  double step_size_ = 0;      ///< 0 = 2.5 * eps / steps
  double warmup_epochs_ = 0;  ///< eps grows linearly from 0 over these epochs, >= 0
  uint64_t seed_ = 0;         ///< the inner maximisation's random start

  TRADESOptions& eps(double v) { eps_ = v; return *this; }
  TRADESOptions& norm(Norm v) { norm_ = v; return *this; }
  TRADESOptions& beta(double v) { beta_ = v; return *this; }
  TRADESOptions& steps(int64_t v) { steps_ = v; return *this; }
  TRADESOptions& step_size(double v) { step_size_ = v; return *this; }
  TRADESOptions& warmup_epochs(double v) { warmup_epochs_ = v; return *this; }
  TRADESOptions& seed(uint64_t v) { seed_ = v; return *this; }

  void validate() const;
  nlohmann::json to_json() const;
};

class TRADESObjective : public Objective {
 public:
  explicit TRADESObjective(TRADESOptions options);
  std::string name() const override { return "trades"; }
  torch::Tensor loss(ScriptClassifier& model, const Batch& batch, const StepContext& ctx,
                     torch::Tensor& clean_logits) override;
  torch::Tensor adversarial_batch(ScriptClassifier& model, const Batch& batch, const StepContext& ctx) override;
  nlohmann::json describe() const override { return o_.to_json(); }

 private:
  TRADESOptions o_;
};

}  // namespace aegis
