#pragma once
/// Robust accuracy by the AutoAttack protocol (Croce and Hein 2020): an
/// ensemble of attacks run in sequence, each only on the samples every
/// earlier attack failed to break, giving per-sample worst-case robust
/// accuracy, which attack broke each sample, and timings. Sanity checks that
/// catch gradient masking and broken attacks come with every result as
/// warnings: a number that a weak attack or masked gradients can inflate is
/// reported as suspect, never as plain robustness.
///
///   RobustEvaluation r = evaluate_robustness(*model, test.head(1000),
///                                            RobustEvaluationOptions(Norm::Linf, 0.1));
///   r.robust_accuracy; r.stages; r.warnings;

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/attacks/attack.h"
#include "aegis/attacks/evasion/preflight.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct RobustEvaluationOptions {
  RobustEvaluationOptions(Norm norm, double eps) : norm_(norm), eps_(eps) {}
  Norm norm_;
  double eps_;
  /// Attacks in order, as registry names with parameters; empty = the
  /// standard ensemble (APGD-CE, targeted APGD-DLR, Square).
  std::vector<std::pair<std::string, nlohmann::json>> attacks_;
  int64_t batch_size_ = 256;
  uint64_t seed_ = 0;
  /// "quick" (fewer iterations/queries), "standard" (AutoAttack's budgets).
  std::string budget_ = "standard";
  /// Run the sanity checks (extra attacks at other eps / unbounded); default on.
  bool sanity_checks_ = true;
  /// For randomised or non-differentiable defences: expectation over
  /// transformation samples per gradient (1 = off).
  int64_t eot_samples_ = 1;
  /// Clean-correct samples the sanity checks re-attack (first ones); default 200.
  int64_t sanity_samples_ = 200;
  /// Run even when a preflight check refuses (run_preflight: data outside the
  /// model's range, eps that covers the box, no gradient for gradient-only
  /// ensembles); the refusal is then one more warning. Default off: throws.
  bool force_ = false;

  RobustEvaluationOptions& attacks(std::vector<std::pair<std::string, nlohmann::json>> v) { attacks_ = std::move(v); return *this; }
  RobustEvaluationOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  RobustEvaluationOptions& seed(uint64_t v) { seed_ = v; return *this; }
  RobustEvaluationOptions& budget(std::string v) { budget_ = std::move(v); return *this; }
  RobustEvaluationOptions& sanity_checks(bool v) { sanity_checks_ = v; return *this; }
  RobustEvaluationOptions& eot_samples(int64_t v) { eot_samples_ = v; return *this; }
  RobustEvaluationOptions& sanity_samples(int64_t v) { sanity_samples_ = v; return *this; }
  RobustEvaluationOptions& force(bool v) { force_ = v; return *this; }
};

/// One attack of the ensemble.
struct EvaluationStage {
  std::string attack;             ///< registry name
  nlohmann::json options;         ///< its parameters
  int64_t attacked = 0;           ///< samples it ran on (those still robust)
  int64_t broken = 0;             ///< of which it broke
  double robust_accuracy_after = 0;
  int64_t queries = 0;
  double seconds = 0;
  bool white_box = true;          ///< needs gradients (false: score- or decision-based)
};

/// A sanity check's outcome; `passed` false means the robust accuracy is suspect.
struct SanityCheck {
  std::string name;     ///< e.g. "monotone-in-eps", "unbounded-attack-succeeds"
  bool passed = true;
  std::string detail;   ///< what was measured
};

struct RobustEvaluation {
  Norm norm = Norm::Linf;
  double eps = 0;
  int64_t samples = 0;
  double clean_accuracy = 0;
  double robust_accuracy = 0;
  torch::Tensor clean_correct;   ///< [N] bool
  torch::Tensor robust;          ///< [N] bool: still correct after every attack
  std::vector<std::string> broken_by;  ///< [N]: "" robust, "clean" misclassified already, else the attack
  torch::Tensor x_adv;           ///< [N, ...] the adversarial example found (x where none)
  std::vector<EvaluationStage> stages;
  Preflight preflight;           ///< the checks run before any attack
  std::vector<SanityCheck> sanity;
  std::vector<std::string> warnings;   ///< preflight warnings and failed sanity checks, in words
  double seconds = 0;
  std::string protocol;          ///< "autoattack-standard", "autoattack-quick" or "custom"
  std::vector<std::string> notes;  ///< how this run departs from the protocol (skipped stages, ...)
  nlohmann::json to_json(bool per_sample = false) const;
};

RobustEvaluation evaluate_robustness(Classifier& model, const Dataset& data, const RobustEvaluationOptions& options);

/// The ensemble evaluate_robustness runs when options.attacks_ is empty, as
/// (registry name, parameters) pairs with eps, norm and seed filled in.
/// Depends on the model: APGD-T needs >= 4 classes, white-box stages need
/// gradients, Square needs images (or flat features for linf).
std::vector<std::pair<std::string, nlohmann::json>> default_ensemble(const ModelMeta& meta, bool has_gradients,
                                                                     const RobustEvaluationOptions& options,
                                                                     std::vector<std::string>* notes = nullptr);

}  // namespace aegis
