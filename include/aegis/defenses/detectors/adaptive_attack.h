#pragma once
/// Adaptive attack on a model guarded by a detector: the attacker knows the
/// detector and its threshold and wants an input that the model misclassifies
/// AND the detector lets through (score <= threshold). Carlini and Wagner
/// (2017) and Tramer et al. (2020) showed that detectors measured only
/// against attacks that ignore them look far stronger than they are; this is
/// the attack that does not ignore it.
///
/// Method (Bryniarski et al. 2022, "Evading adversarial example detectors
/// using orthogonal projected gradient descent"): projected gradient steps in
/// the eps ball where each sample takes the gradient of the one constraint it
/// still violates: the model's margin loss while it is classified correctly,
/// the detector's score (Detector::score_graph, BPDA where the detector is not
/// differentiable) while it is misclassified but flagged. "orthogonal" removes
/// from that gradient its component along the other constraint's gradient, so
/// a step that lowers the score does not undo the misclassification (and the
/// reverse); "selective" uses the plain gradient. For a randomised detector
/// the gradients are averaged over `eot_samples` draws (EOT).
///
/// Every success is verified at the end with the detector's own score() and
/// the model's prediction, not the surrogate: an attack that reports an
/// evasion it did not earn would understate the detector.
///
///   AdaptiveDetectorAttackResult r = adaptive_detector_attack(*model, *det, x, y,
///       AdaptiveDetectorAttackOptions(0.1).steps(100));
///   r.evaded;  // [B] misclassified and not flagged

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/attacks/attack.h"
#include "aegis/core/classifier.h"
#include "aegis/defenses/detectors/detector.h"

namespace aegis {

struct AdaptiveDetectorAttackOptions {
  explicit AdaptiveDetectorAttackOptions(double eps) : eps_(eps) {}
  double eps_;                       ///< perturbation budget, > 0
  Norm norm_ = Norm::Linf;           ///< Linf or L2
  int64_t steps_ = 100;              ///< iterations per restart, >= 1
  double step_size_ = 0;             ///< 0 = 2.5 * eps / steps
  int64_t restarts_ = 1;             ///< >= 1; later restarts only on samples not yet evaded
  std::string method_ = "combined";  ///< "combined", "orthogonal" or "selective"
  int64_t eot_samples_ = 1;          ///< gradient draws per step (> 1 for randomised detectors)
  /// Linf step shape: "sign" (every value moves by the step size, as in PGD)
  /// or "scaled" (the gradient scaled to the sign step's L2 length: moves the
  /// values that matter, less high-frequency noise for a detector to see).
  std::string linf_step_ = "sign";
  uint64_t seed_ = 0;

  AdaptiveDetectorAttackOptions& eps(double v) { eps_ = v; return *this; }
  AdaptiveDetectorAttackOptions& norm(Norm v) { norm_ = v; return *this; }
  AdaptiveDetectorAttackOptions& steps(int64_t v) { steps_ = v; return *this; }
  AdaptiveDetectorAttackOptions& step_size(double v) { step_size_ = v; return *this; }
  AdaptiveDetectorAttackOptions& restarts(int64_t v) { restarts_ = v; return *this; }
  AdaptiveDetectorAttackOptions& method(std::string v) { method_ = std::move(v); return *this; }
  AdaptiveDetectorAttackOptions& eot_samples(int64_t v) { eot_samples_ = v; return *this; }
  AdaptiveDetectorAttackOptions& linf_step(std::string v) { linf_step_ = std::move(v); return *this; }
  AdaptiveDetectorAttackOptions& seed(uint64_t v) { seed_ = v; return *this; }
  nlohmann::json to_json() const;
};

struct AdaptiveDetectorAttackResult {
  /// [B, ...]: an evading input where one was found, else the misclassified
  /// input with the lowest detector score, else the last iterate.
  torch::Tensor x_adv;
  torch::Tensor fooled;   ///< [B] bool: the model misclassifies x_adv
  torch::Tensor flagged;  ///< [B] bool: the detector flags x_adv
  torch::Tensor evaded;   ///< [B] bool: fooled and not flagged
  torch::Tensor scores;   ///< [B] float: the detector's score() of x_adv
  int64_t iterations = 0;
  std::string surrogate;  ///< the detector's surrogate() the gradients came from
  std::vector<std::string> warnings;  ///< e.g. a randomised detector attacked without EOT
};

/// Runs the attack on (x, y) against `model` guarded by `detector` at its
/// current threshold. Throws Unsupported for a black-box model or a detector
/// without score_graph(), InvalidArgument for bad options.
AdaptiveDetectorAttackResult adaptive_detector_attack(Classifier& model, Detector& detector, const torch::Tensor& x,
                                                      const torch::Tensor& y,
                                                      const AdaptiveDetectorAttackOptions& options);

}  // namespace aegis
