#pragma once
/// Attack: one evasion technique, one Options struct, one entry point.
///
///   PGD pgd(PGDOptions(0.1).steps(20).norm(Norm::Linf));
///   AttackResult r = pgd.run(*model, x, y);           // untargeted
///   AttackResult t = pgd.run(*model, x, y, targets);  // targeted at `targets`
///   r.x_adv; r.success; r.l2; r.queries;
///
/// Every result is checked by Attack::run before it is returned: inside the
/// valid input range always, and inside the eps ball for attacks that have
/// one (an attack that breaks either throws Internal instead of reporting a
/// success it did not earn). Success is measured by one final forward pass
/// that is not charged to the attack's queries.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/core/classifier.h"

namespace aegis {

/// Threat model: the norm the perturbation is measured in.
enum class Norm { Linf, L2, L1 };
Norm parse_norm(const std::string& s);  ///< "linf", "l2", "l1" (case-insensitive); throws InvalidArgument
std::string norm_name(Norm n);           ///< "linf", "l2", "l1"

/// How a targeted attack picks its target when run() is given none.
enum class TargetMode {
  None,         ///< untargeted: any wrong class is a success
  Random,       ///< a uniformly random class other than the true one
  LeastLikely,  ///< the class the model finds least likely on the clean input
};
TargetMode parse_target_mode(const std::string& s);  ///< "none", "random", "least-likely"
std::string target_mode_name(TargetMode m);

/// Options every attack shares, as a CRTP base so setters chain on the derived type.
template <class Derived>
struct CommonAttackOptions {
  TargetMode target_mode_ = TargetMode::None;  ///< default untargeted
  uint64_t seed_ = 0;                          ///< random starts, random targets
  bool early_stop_ = true;  ///< a sample that is already adversarial stops costing passes

  Derived& target_mode(TargetMode v) { target_mode_ = v; return static_cast<Derived&>(*this); }
  Derived& seed(uint64_t v) { seed_ = v; return static_cast<Derived&>(*this); }
  Derived& early_stop(bool v) { early_stop_ = v; return static_cast<Derived&>(*this); }
};

struct AttackResult {
  torch::Tensor x_adv;    ///< [B, ...] adversarial batch (the input where the attack failed)
  torch::Tensor success;  ///< [B] bool: misclassified (untargeted) / classified as target (targeted)
  torch::Tensor l0, l2, linf;  ///< [B] float: perturbation norms (0 where x_adv == x)
  torch::Tensor targets;  ///< [B] int64 targets, undefined for untargeted runs
  torch::Tensor adv_pred; ///< [B] int64: the model's class for x_adv
  int64_t queries = 0;    ///< forward passes charged to the attack, counted per sample
  int64_t iterations = 0; ///< iterations the attack ran (max over samples)
  double seconds = 0;     ///< wall time

  int64_t samples() const { return success.defined() ? success.size(0) : 0; }
  double success_rate() const;
  /// Summary (rates, mean/median norms, queries, time); per-sample arrays when asked.
  nlohmann::json to_json(bool per_sample = false) const;
};

class Attack {
 public:
  virtual ~Attack() = default;
  /// Registry name ("fgsm", "pgd", ...).
  virtual std::string name() const = 0;
  /// True for white-box attacks that need Classifier::forward().
  virtual bool needs_gradients() const = 0;
  /// The perturbation budget when the attack has one (eps-bounded attacks);
  /// empty for minimal-perturbation attacks (C&W, DeepFool).
  virtual std::optional<std::pair<Norm, double>> budget() const = 0;
  /// The attack's parameters, as the registry takes them.
  virtual nlohmann::json options_json() const = 0;

  /// Attacks a batch: x in the model's valid range, y the true labels.
  /// With `targets` defined the attack is targeted at them; otherwise the
  /// options' TargetMode decides. Leaves the model's parameters untouched.
  AttackResult run(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                   const torch::Tensor& targets = {});
  /// run() over consecutive batches of `batch_size` samples, results joined
  /// in order (queries and time summed, iterations the maximum): what the
  /// CLI and the Python package do with a whole dataset.
  AttackResult run_batched(Classifier& model, const torch::Tensor& x, const torch::Tensor& y, int64_t batch_size,
                           const torch::Tensor& targets = {});

 protected:
  /// The technique. `targets` is defined for targeted runs. Returns the
  /// adversarial batch; run() measures success, norms, queries and time.
  virtual torch::Tensor attack(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                               const torch::Tensor& targets, int64_t& iterations) = 0;
  virtual TargetMode target_mode() const = 0;
  virtual uint64_t seed() const = 0;
};

/// Per-sample success of `logits` given labels and (optional) targets.
torch::Tensor is_adversarial(const torch::Tensor& logits, const torch::Tensor& y, const torch::Tensor& targets);

/// [B, 1, 1, ...]: the shape that broadcasts a per-sample value [B] over a
/// batch shaped like x.
std::vector<int64_t> batch_view(const torch::Tensor& x);

/// Projects x_adv onto the `norm` ball of radius eps around x and into [lo, hi].
torch::Tensor project(const torch::Tensor& x_adv, const torch::Tensor& x, Norm norm, double eps, double lo,
                      double hi);

/// Per-sample norms of a batch of perturbations: {l0, l2, linf}.
std::tuple<torch::Tensor, torch::Tensor, torch::Tensor> perturbation_norms(const torch::Tensor& delta);

}  // namespace aegis
