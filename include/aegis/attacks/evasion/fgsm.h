#pragma once
/// FGSM (Goodfellow et al. 2015): one step of size eps along the sign of the
/// loss gradient (Linf) or along the normalised gradient (L2).
///
///   FGSM fgsm(FGSMOptions(0.1));
///   AttackResult r = fgsm.run(*model, x, y);

#include "aegis/attacks/attack.h"

namespace aegis {

struct FGSMOptions : CommonAttackOptions<FGSMOptions> {
  explicit FGSMOptions(double eps) : eps_(eps) {}
  double eps_;             ///< perturbation budget, > 0
  Norm norm_ = Norm::Linf; ///< Linf or L2
  FGSMOptions& eps(double v) { eps_ = v; return *this; }
  FGSMOptions& norm(Norm v) { norm_ = v; return *this; }
};

class FGSM : public Attack {
 public:
  explicit FGSM(FGSMOptions options);
  static std::unique_ptr<Attack> from_json(const nlohmann::json& params);

  std::string name() const override { return "fgsm"; }
  bool needs_gradients() const override { return true; }
  std::optional<std::pair<Norm, double>> budget() const override { return std::make_pair(o_.norm_, o_.eps_); }
  nlohmann::json options_json() const override;

 protected:
  torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                       int64_t& iterations) override;
  TargetMode target_mode() const override { return o_.target_mode_; }
  uint64_t seed() const override { return o_.seed_; }

 private:
  FGSMOptions o_;
};

}  // namespace aegis
