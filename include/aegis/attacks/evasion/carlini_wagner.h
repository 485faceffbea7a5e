#pragma once
/// Carlini-Wagner L2 (Carlini and Wagner 2017): a minimal-perturbation
/// attack. Optimises w in tanh space (x_adv = lo + (hi - lo)(tanh(w) + 1)/2,
/// so the valid range holds by construction) to minimise
/// ||x_adv - x||_2^2 + c * max(z_y - max_{j!=y} z_j, -kappa) with Adam,
/// binary-searching c per sample, and aborting a search step early when the
/// loss stops falling. Keeps the smallest successful perturbation found.
///
///   CarliniWagner cw(CarliniWagnerOptions().steps(100).binary_search_steps(5));
///   AttackResult r = cw.run(*model, x, y);   // r.l2: the perturbation sizes
///
/// A sample C&W could not break comes back unchanged (x_adv == x).

#include "aegis/attacks/attack.h"

namespace aegis {

struct CarliniWagnerOptions : CommonAttackOptions<CarliniWagnerOptions> {
  int64_t steps_ = 100;              ///< Adam steps per binary-search step, >= 1
  int64_t binary_search_steps_ = 5;  ///< rounds of the search over c, >= 1
  double initial_const_ = 1e-2;      ///< first c, > 0
  double kappa_ = 0;                 ///< confidence margin, >= 0
  double lr_ = 1e-2;                 ///< Adam learning rate, > 0
  bool abort_early_ = true;          ///< stop a round when the loss has not fallen by 1e-4 in steps/10 steps

  CarliniWagnerOptions& steps(int64_t v) { steps_ = v; return *this; }
  CarliniWagnerOptions& binary_search_steps(int64_t v) { binary_search_steps_ = v; return *this; }
  CarliniWagnerOptions& initial_const(double v) { initial_const_ = v; return *this; }
  CarliniWagnerOptions& kappa(double v) { kappa_ = v; return *this; }
  CarliniWagnerOptions& lr(double v) { lr_ = v; return *this; }
  CarliniWagnerOptions& abort_early(bool v) { abort_early_ = v; return *this; }
};

class CarliniWagner : public Attack {
 public:
  explicit CarliniWagner(CarliniWagnerOptions options = {});
  static std::unique_ptr<Attack> from_json(const nlohmann::json& params);

  std::string name() const override { return "cw"; }
  bool needs_gradients() const override { return true; }
  std::optional<std::pair<Norm, double>> budget() const override { return std::nullopt; }
  nlohmann::json options_json() const override;

 protected:
  torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                       int64_t& iterations) override;
  TargetMode target_mode() const override { return o_.target_mode_; }
  uint64_t seed() const override { return o_.seed_; }

 private:
  CarliniWagnerOptions o_;
};

}  // namespace aegis
