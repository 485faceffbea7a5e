#pragma once
/// Preflight checks before an attack or an evaluation runs: the mistakes that
/// make an attack look weak and a model look robust when it is not (the ones
/// AutoAttack's checks warn about, and more). Each check passes, warns (the
/// result will be reported as suspect) or refuses (the result would be
/// meaningless; callers throw unless the user forces the run).
///
///   Preflight p = run_preflight(*model, x, y, PreflightOptions(Norm::Linf, 0.1));
///   p.warnings();          // in words, for the result's warnings
///   p.enforce();           // throws InvalidArgument when a check refused
///
/// Checks, by name:
///   inputs-in-range          data outside the model's declared [clip_min, clip_max]
///                            (refuse), or using a sliver of it (warn: eps is on the
///                            declared scale)
///   eps-fits-norm            eps that covers the whole input box (refuse) or is
///                            below half a 1/255 grey level per value for its norm
///                            (warn: 8/255 given as an L2 budget)
///   logits-not-probabilities outputs that are probabilities (rows >= 0 summing to 1):
///                            the loss on them is flat and attacks look weak (warn)
///   deterministic-forward    two passes over the same inputs differ (warn unless EOT)
///   batch-independent        a sample's outputs depend on its batch, e.g. BatchNorm
///                            left in training mode (warn)
///   eval-mode                a TorchScript module or submodule in training mode (warn)
///   no-autograd-in-forward   the forward pass calls autograd (aten::grad/backward in
///                            its graph), or fails or changes without autograd: a
///                            test-time-optimising defence needs an adaptive attack (warn)
///   gradients-nonzero        input gradients of the loss that are zero or not finite:
///                            a gradient-killing layer or a saturated softmax (warn;
///                            refuse when every probe sample has none and the run
///                            has only gradient attacks)

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/attacks/attack.h"

namespace aegis {

struct PreflightOptions {
  /// eps <= 0 skips the eps check (minimum-norm attacks such as C&W, DeepFool).
  PreflightOptions(Norm norm, double eps) : norm_(norm), eps_(eps) {}
  Norm norm_;
  double eps_;
  /// The run has gradient attacks only: no gradient at all makes it meaningless.
  bool gradient_only_ = false;
  /// The run averages gradients over randomness (EOT): a random forward is expected.
  int64_t eot_samples_ = 1;
  /// Samples the behavioural checks probe (the first ones); range is checked on all.
  int64_t probe_samples_ = 16;

  PreflightOptions& gradient_only(bool v) { gradient_only_ = v; return *this; }
  PreflightOptions& eot_samples(int64_t v) { eot_samples_ = v; return *this; }
  PreflightOptions& probe_samples(int64_t v) { probe_samples_ = v; return *this; }
};

enum class PreflightVerdict { Pass, Warn, Refuse };
std::string preflight_verdict_name(PreflightVerdict v);  ///< "pass", "warn", "refuse"

struct PreflightCheck {
  std::string name;
  PreflightVerdict verdict = PreflightVerdict::Pass;
  std::string detail;  ///< what was measured, and for a warning what to do about it
};

struct Preflight {
  std::vector<PreflightCheck> checks;
  bool refused() const;
  /// Each check that warned or refused, as "name: detail".
  std::vector<std::string> warnings() const;
  /// Throws InvalidArgument naming every refusal (a no-op when none refused).
  void enforce() const;
  nlohmann::json to_json() const;
};

/// Runs every check that applies to the model (gradient checks only when it
/// has gradients). x: the data to attack, y: its labels. Never throws for a
/// misbehaving model: a forward pass that fails is what a check reports.
Preflight run_preflight(Classifier& model, const torch::Tensor& x, const torch::Tensor& y,
                        const PreflightOptions& options);

}  // namespace aegis
