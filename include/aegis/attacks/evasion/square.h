#pragma once
/// Square attack (Andriushchenko et al. 2020): a score-based black-box
/// attack. Random search over square-shaped updates at the corners of the
/// eps ball (Linf) or over pairs of windows with pseudo-Gaussian mass moved
/// between them (L2), keeping an update only when the margin loss drops. It
/// sees the model only through Classifier::logits() (the scores a remote
/// model returns), so it works on black-box classifiers, and every query is
/// counted by the classifier. Samples stop costing queries once broken.
///
///   Square sq(SquareOptions(0.1).queries(1000).p_init(0.8));
///   AttackResult r = sq.run(*remote_model, x, y);   // r.queries: what the attacker paid
///
/// Inputs are images [C, H, W]; for Linf, flat feature vectors [D] also work
/// (the squares become contiguous strips).

#include "aegis/attacks/attack.h"

namespace aegis {

struct SquareOptions : CommonAttackOptions<SquareOptions> {
  explicit SquareOptions(double eps) : eps_(eps) {}
  double eps_;              ///< perturbation budget, > 0
  Norm norm_ = Norm::Linf;  ///< Linf or L2
  int64_t queries_ = 5000;  ///< query budget per sample (including the initial one), >= 1
  double p_init_ = 0.8;     ///< initial fraction of pixels changed per step, in (0, 1]
  int64_t restarts_ = 1;    ///< independent runs on samples still robust, >= 1

  SquareOptions& eps(double v) { eps_ = v; return *this; }
  SquareOptions& norm(Norm v) { norm_ = v; return *this; }
  SquareOptions& queries(int64_t v) { queries_ = v; return *this; }
  SquareOptions& p_init(double v) { p_init_ = v; return *this; }
  SquareOptions& restarts(int64_t v) { restarts_ = v; return *this; }
};

class Square : public Attack {
 public:
  explicit Square(SquareOptions options);
  static std::unique_ptr<Attack> from_json(const nlohmann::json& params);

  std::string name() const override { return "square"; }
  bool needs_gradients() const override { return false; }
  std::optional<std::pair<Norm, double>> budget() const override { return std::make_pair(o_.norm_, o_.eps_); }
  nlohmann::json options_json() const override;

 protected:
  torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, const torch::Tensor& targets,
                       int64_t& iterations) override;
  TargetMode target_mode() const override { return o_.target_mode_; }
  uint64_t seed() const override { return o_.seed_; }

 private:
  SquareOptions o_;
};

/// The fraction of pixels a Square step changes at iteration `it` of `queries`
/// (the reference schedule, defined for 10,000 queries and rescaled).
double square_p_selection(double p_init, int64_t it, int64_t queries);

}  // namespace aegis
