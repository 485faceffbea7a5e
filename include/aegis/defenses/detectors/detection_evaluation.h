#pragma once
/// How well a detector separates adversarial from clean inputs: for each
/// attack, adversarial examples are crafted against the model on correctly
/// classified clean samples, and the detector's scores on the successful ones
/// are compared with its scores on clean samples: ROC AUC, and the true-
/// positive rate at the threshold calibrated for a target false-positive rate
/// on separate clean data (with the false-positive rate that threshold really
/// has on the evaluation's clean samples).
///
/// The figure a security team acts on is the robust accuracy of the model and
/// detector together: a sample counts as defended when it is classified
/// correctly and every attack either fails to change its label or is
/// flagged. Against attacks that ignore the detector that figure flatters it;
/// with `adaptive` set the evaluation also runs the adaptive attack
/// (adaptive_attack.h), which optimises against the detector at its
/// calibrated threshold, and reports the worst case over all attacks.
///
///   DetectionEvaluation e = evaluate_detector(*det, *model, calib.x, test,
///       {{"fgsm", {{"eps", 0.1}}}, {"pgd", {{"eps", 0.1}}}},
///       DetectionEvaluationOptions());

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "aegis/attacks/poisoning/trigger.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"
#include "aegis/defenses/detectors/adaptive_attack.h"
#include "aegis/defenses/detectors/detector.h"

namespace aegis {

/// Area under the ROC curve of scores (higher = positive), ties counted half.
double roc_auc(const torch::Tensor& negative_scores, const torch::Tensor& positive_scores);

struct DetectionEvaluationOptions {
  double target_fpr_ = 0.05;  ///< false-positive rate the threshold is calibrated for, in (0, 1)
  int64_t batch_size_ = 256;
  /// Also run the adaptive attack with these options (unset = non-adaptive only).
  std::optional<AdaptiveDetectorAttackOptions> adaptive_;
  DetectionEvaluationOptions& target_fpr(double v) { target_fpr_ = v; return *this; }
  DetectionEvaluationOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  /// Also measure the detector on backdoor-triggered inputs (STRIP's job): the
  /// trigger stamped on every correctly classified sample whose label is not
  /// `target`; a triggered input is successful when the model then predicts
  /// the target. Reported as the attack "trigger" (not an eps-bounded attack,
  /// so it stays out of the worst case). Its false acceptance is 1 - TPR.
  std::optional<std::pair<Trigger, int64_t>> backdoor_;
  DetectionEvaluationOptions& adaptive(AdaptiveDetectorAttackOptions v) { adaptive_ = std::move(v); return *this; }
  DetectionEvaluationOptions& backdoor(Trigger t, int64_t target) { backdoor_ = {std::move(t), target}; return *this; }
};

struct AttackDetection {
  std::string attack;      ///< registry name, "adaptive" or "trigger"
  nlohmann::json options;
  bool adaptive = false;   ///< the attack optimised against the detector
  bool bounded = true;     ///< has an eps budget (C&W's minimal-norm attack has none)
  int64_t attacked = 0;    ///< correctly classified clean samples attacked
  int64_t successful = 0;  ///< adversarial examples that fool the model (the positives)
  int64_t evaded = 0;      ///< of those, the ones the detector lets through
  double auc = 0;          ///< clean vs successful adversarial (NaN when none succeeded)
  double tpr = 0;          ///< at the calibrated threshold
  double model_robust_accuracy = 0;  ///< of all evaluation samples: correct and not fooled
  double robust_accuracy = 0;        ///< with the detector: correct and (not fooled or flagged)
  std::vector<std::string> warnings;
  nlohmann::json to_json() const;
};

struct DetectionEvaluation {
  std::string detector;
  double threshold = 0;
  double target_fpr = 0;
  double clean_fpr = 0;  ///< measured on the evaluation's clean samples
  int64_t clean_samples = 0;
  double clean_accuracy = 0;
  std::vector<AttackDetection> attacks;  ///< the non-adaptive ones, the trigger, then the adaptive one
  /// Worst case over the non-adaptive attacks with an eps budget (all of them
  /// when none has one): the model alone, and with the detector. Minimal-norm
  /// attacks (C&W) reach every sample at some size, so counting them would
  /// say nothing about a threat model.
  double robust_accuracy_model = 0;
  double robust_accuracy_detector = 0;
  /// Worst case over every attack, the adaptive one included (NaN when it did not run).
  double robust_accuracy_adaptive = std::numeric_limits<double>::quiet_NaN();
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// Calibrates `detector` on `calibration_x` (clean, disjoint from `data`),
/// then evaluates it on `data` against each attack (registry name, parameters).
DetectionEvaluation evaluate_detector(Detector& detector, Classifier& model, const torch::Tensor& calibration_x,
                                      const Dataset& data,
                                      const std::vector<std::pair<std::string, nlohmann::json>>& attacks,
                                      const DetectionEvaluationOptions& options = {});

/// The detector beside a robustness evaluation (`aegis evaluate --detector`):
/// the robust accuracy of model and detector together, against the
/// evaluation's own adversarial examples (a flagged one counts as defended)
/// and, worst case, against those and the adaptive attack at the same norm
/// and eps. The detector keeps the threshold it was saved with.
struct DetectorRobustness {
  std::string detector;
  double threshold = 0;
  double clean_flagged = 0;  ///< fraction of the evaluation's clean samples the detector flags
  int64_t samples = 0;
  double robust_accuracy_model = 0;     ///< the evaluation's figure
  double robust_accuracy_detector = 0;  ///< with the detector, the evaluation's attacks
  double robust_accuracy_adaptive = 0;  ///< with the detector, worst case with the adaptive attack
  AttackDetection adaptive;
  nlohmann::json to_json() const;
};

/// `x_adv` [N, ...] and `robust` [N] bool are the evaluation's (RobustEvaluation).
DetectorRobustness evaluate_with_detector(Detector& detector, Classifier& model, const Dataset& data,
                                          const torch::Tensor& x_adv, const torch::Tensor& robust,
                                          const AdaptiveDetectorAttackOptions& adaptive, int64_t batch_size = 256);

}  // namespace aegis
