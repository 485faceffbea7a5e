#pragma once
/// HopSkipJump (Chen, Jordan and Wainwright 2020): a decision-based
/// black-box attack. It sees only the predicted class (Classifier::predict),
/// finds any adversarial point, binary-searches to the decision boundary,
/// estimates the boundary's normal from the signs of random probes around
/// it, and jumps along it with a geometrically shrinking step, shrinking the
/// distance to x (L2 or Linf) with every iteration. A minimal-perturbation
/// attack: every success is a real adversarial example and the result's norms
/// say how far from x it lies. Every query is counted by the classifier.
///
///   HopSkipJump hsj(HopSkipJumpOptions().norm(Norm::L2).steps(40));
///   AttackResult r = hsj.run(*remote_model, x, y);   // r.l2, r.queries
///
/// Targeted runs start from a batch sample the model already assigns to the
/// target (or random noise that it does); without one a sample fails.

#include "aegis/attacks/attack.h"

namespace aegis {

struct HopSkipJumpOptions : CommonAttackOptions<HopSkipJumpOptions> {
  Norm norm_ = Norm::L2;       ///< L2 or Linf
  int64_t steps_ = 40;         ///< iterations (gradient estimate, jump, binary search), >= 1
  int64_t init_evals_ = 100;   ///< probes of the first gradient estimate (grows as sqrt(t)), >= 1
  int64_t max_evals_ = 10000;  ///< cap on probes per estimate, >= init_evals
  int64_t max_queries_ = 0;    ///< per-sample query budget (0 = none); a sample stops when spent
  double gamma_ = 1.0;         ///< binary-search threshold factor, > 0
  int64_t init_tries_ = 100;   ///< random-noise draws to find a starting point, >= 1

  HopSkipJumpOptions& norm(Norm v) { norm_ = v; return *this; }
  HopSkipJumpOptions& steps(int64_t v) { steps_ = v; return *this; }
  HopSkipJumpOptions& init_evals(int64_t v) { init_evals_ = v; return *this; }
  HopSkipJumpOptions& max_evals(int64_t v) { max_evals_ = v; return *this; }
  HopSkipJumpOptions& max_queries(int64_t v) { max_queries_ = v; return *this; }
  HopSkipJumpOptions& gamma(double v) { gamma_ = v; return *this; }
  HopSkipJumpOptions& init_tries(int64_t v) { init_tries_ = v; return *this; }
};

class HopSkipJump : public Attack {
 public:
  explicit HopSkipJump(HopSkipJumpOptions options = {});
  static std::unique_ptr<Attack> from_json(const nlohmann::json& params);

  std::string name() const override { return "hopskipjump"; }
  bool needs_gradients() const override { return false; }
  std::optional<std::pair<Norm, double>> budget() const override { return std::nullopt; }
  nlohmann::json options_json() const override;

 protected:
  torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                       int64_t& iterations) override;
  TargetMode target_mode() const override { return o_.target_mode_; }
  uint64_t seed() const override { return o_.seed_; }

 private:
  HopSkipJumpOptions o_;
};

}  // namespace aegis
