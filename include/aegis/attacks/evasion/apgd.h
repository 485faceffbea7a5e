#pragma once
/// APGD (Croce and Hein 2020, "Reliable evaluation of adversarial robustness
/// with an ensemble of diverse parameter-free attacks"): PGD without a step
/// size to tune. Momentum 0.75, checkpoints at which the step size halves
/// when the loss stopped rising (and the search restarts from the best point),
/// best-so-far kept across iterations and restarts. Losses: cross-entropy
/// ("ce") and the Difference of Logits Ratio ("dlr", shift and scale
/// invariant, so it does not saturate the way CE does on overconfident models).
///
///   APGD ce(APGDOptions(0.1).steps(100));                          // APGD-CE
///   APGD t(APGDOptions(0.1).loss("dlr").target_classes(9));        // APGD-T (AutoAttack)
///   AttackResult r = ce.run(*model, x, y);
///
/// With target_classes(k) > 0 the attack is AutoAttack's APGD-T: it runs once
/// per target among the k most likely wrong classes (targeted DLR loss), each
/// run only on samples not yet broken, and succeeds on any misclassification.
/// With explicit targets given to run() (or a TargetMode) it is a plain
/// targeted attack that succeeds only when the target is reached.
///
/// EOT: with eot_samples(n) > 1 every gradient is the mean of n forward and
/// backward passes (for randomised models). For non-differentiable defences
/// wrap the defence so that its backward is the identity (BPDA); the attack
/// itself only needs Classifier::forward.

#include "aegis/attacks/attack.h"

namespace aegis {

struct APGDOptions : CommonAttackOptions<APGDOptions> {
  explicit APGDOptions(double eps) : eps_(eps) {}
  double eps_;                  ///< perturbation budget, > 0
  Norm norm_ = Norm::Linf;      ///< Linf or L2
  int64_t steps_ = 100;         ///< iterations per restart (per target for APGD-T), >= 1
  int64_t restarts_ = 1;        ///< random restarts, >= 1; later ones only on samples not yet broken
  std::string loss_ = "ce";     ///< "ce" or "dlr"
  int64_t target_classes_ = 0;  ///< > 0: APGD-T over the top-k wrong classes (k <= classes - 1)
  double rho_ = 0.75;           ///< checkpoint test: halve the step when fewer than rho of the steps raised the loss
  double momentum_ = 0.75;      ///< weight of the new step (1 - momentum on the previous one)
  int64_t eot_samples_ = 1;     ///< gradients averaged over this many passes (randomised models)

  APGDOptions& eps(double v) { eps_ = v; return *this; }
  APGDOptions& norm(Norm v) { norm_ = v; return *this; }
  APGDOptions& steps(int64_t v) { steps_ = v; return *this; }
  APGDOptions& restarts(int64_t v) { restarts_ = v; return *this; }
  APGDOptions& loss(std::string v) { loss_ = std::move(v); return *this; }
  APGDOptions& target_classes(int64_t v) { target_classes_ = v; return *this; }
  APGDOptions& rho(double v) { rho_ = v; return *this; }
  APGDOptions& momentum(double v) { momentum_ = v; return *this; }
  APGDOptions& eot_samples(int64_t v) { eot_samples_ = v; return *this; }
};

class APGD : public Attack {
 public:
  explicit APGD(APGDOptions options);
  static std::unique_ptr<Attack> from_json(const nlohmann::json& params);
  /// The registry's "apgd-t": APGD-T parameters (dlr loss, 9 target classes by default).
  static std::unique_ptr<Attack> from_json_targeted(const nlohmann::json& params);

  std::string name() const override { return o_.target_classes_ > 0 ? "apgd-t" : "apgd"; }
  bool needs_gradients() const override { return true; }
  std::optional<std::pair<Norm, double>> budget() const override { return std::make_pair(o_.norm_, o_.eps_); }
  nlohmann::json options_json() const override;

 protected:
  torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                       int64_t& iterations) override;
  TargetMode target_mode() const override { return o_.target_mode_; }
  uint64_t seed() const override { return o_.seed_; }

 private:
  APGDOptions o_;
};

/// Per-sample DLR loss to ascend (Croce and Hein 2020): untargeted
/// -(z_y - max_{j!=y} z_j) / (z_(1) - z_(3)); targeted
/// -(z_y - z_t) / (z_(1) - (z_(3) + z_(4)) / 2), z_(i) the sorted logits.
/// The targeted form needs at least 4 classes, the untargeted 3.
torch::Tensor dlr_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& targets);

/// APGD's checkpoints for n iterations: 0, 0.22 n, ... (as iteration indices).
std::vector<int64_t> apgd_checkpoints(int64_t steps);

}  // namespace aegis
