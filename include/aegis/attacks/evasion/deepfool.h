#pragma once
/// DeepFool (Moosavi-Dezfooli et al. 2016), multi-class: linearises the
/// model around the current point, steps to the nearest linearised decision
/// boundary among the candidate classes, and repeats until the label flips;
/// the total step is scaled by (1 + overshoot) to land just past the boundary.
/// On a linear model it finds the minimal perturbation in one step (within
/// the overshoot). Untargeted only.
///
///   DeepFool df(DeepFoolOptions().steps(50).overshoot(0.02));
///   AttackResult r = df.run(*model, x, y);   // r.l2: distances to the boundary
///
/// A sample DeepFool could not break comes back unchanged (x_adv == x).

#include "aegis/attacks/attack.h"

namespace aegis {

struct DeepFoolOptions : CommonAttackOptions<DeepFoolOptions> {
  int64_t steps_ = 50;       ///< maximum iterations, >= 1
  double overshoot_ = 0.02;  ///< x + (1 + overshoot) * r_total, >= 0
  Norm norm_ = Norm::L2;     ///< L2 or Linf (the dual norm picks the step)
  int64_t candidates_ = 10;  ///< the most likely classes considered (the true class always), >= 2

  DeepFoolOptions& steps(int64_t v) { steps_ = v; return *this; }
  DeepFoolOptions& overshoot(double v) { overshoot_ = v; return *this; }
  DeepFoolOptions& norm(Norm v) { norm_ = v; return *this; }
  DeepFoolOptions& candidates(int64_t v) { candidates_ = v; return *this; }
};

class DeepFool : public Attack {
 public:
  explicit DeepFool(DeepFoolOptions options = {});
  static std::unique_ptr<Attack> from_json(const nlohmann::json& params);

  std::string name() const override { return "deepfool"; }
  bool needs_gradients() const override { return true; }
  std::optional<std::pair<Norm, double>> budget() const override { return std::nullopt; }
  nlohmann::json options_json() const override;

 protected:
  torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                       int64_t& iterations) override;
  TargetMode target_mode() const override { return TargetMode::None; }
  uint64_t seed() const override { return o_.seed_; }

 private:
  DeepFoolOptions o_;
};

}  // namespace aegis
