#pragma once
/// PGD / BIM (Madry et al. 2018; Kurakin et al. 2017): iterated gradient
/// steps projected onto the eps ball and the valid range, with a random start
/// (PGD) or none (BIM), random restarts keeping the best result, a step-size
/// schedule, and per-sample early stopping.
///
///   PGD pgd(PGDOptions(0.1).steps(20));                    // Linf, 2.5*eps/steps steps
///   PGD l2(PGDOptions(1.5).norm(Norm::L2).restarts(3));
///   AttackResult r = pgd.run(*model, x, y);

#include "aegis/attacks/attack.h"

namespace aegis {

struct PGDOptions : CommonAttackOptions<PGDOptions> {
  explicit PGDOptions(double eps) : eps_(eps) {}
  double eps_;               ///< perturbation budget, > 0
  Norm norm_ = Norm::Linf;   ///< Linf, L2 or L1 (L1: steepest-coordinate steps)
  int64_t steps_ = 20;       ///< iterations per restart, >= 1
  double step_size_ = 0;     ///< 0 = 2.5 * eps / steps
  bool random_start_ = true; ///< false gives BIM
  int64_t restarts_ = 1;     ///< >= 1; later restarts only on samples not yet broken
  std::string loss_ = "ce";  ///< "ce" (cross-entropy) or "margin" (C&W logit margin)
  std::string schedule_ = "constant";  ///< "constant" or "cosine" step sizes

  PGDOptions& eps(double v) { eps_ = v; return *this; }
  PGDOptions& norm(Norm v) { norm_ = v; return *this; }
  PGDOptions& steps(int64_t v) { steps_ = v; return *this; }
  PGDOptions& step_size(double v) { step_size_ = v; return *this; }
  PGDOptions& random_start(bool v) { random_start_ = v; return *this; }
  PGDOptions& restarts(int64_t v) { restarts_ = v; return *this; }
  PGDOptions& loss(std::string v) { loss_ = std::move(v); return *this; }
  PGDOptions& schedule(std::string v) { schedule_ = std::move(v); return *this; }
};

class PGD : public Attack {
 public:
  explicit PGD(PGDOptions options);
  static std::unique_ptr<Attack> from_json(const nlohmann::json& params);

  std::string name() const override { return o_.random_start_ ? "pgd" : "bim"; }
  bool needs_gradients() const override { return true; }
  std::optional<std::pair<Norm, double>> budget() const override { return std::make_pair(o_.norm_, o_.eps_); }
  nlohmann::json options_json() const override;

 protected:
  torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                       int64_t& iterations) override;
  TargetMode target_mode() const override { return o_.target_mode_; }
  uint64_t seed() const override { return o_.seed_; }

 private:
  PGDOptions o_;
};

/// A random point in the `norm` ball of radius eps around x, clipped to [lo, hi].
torch::Tensor random_start(const torch::Tensor& x, Norm norm, double eps, double lo, double hi, at::Generator& gen);

/// Per-sample attack loss to *ascend*: CE(y) (untargeted) or -CE(target);
/// with "margin", the C&W margin max_{j!=y} z_j - z_y (or z_t - max_{j!=t} z_j).
torch::Tensor adversarial_loss(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& targets,
                               const std::string& loss);

}  // namespace aegis
