#pragma once
/// How well a detector separates adversarial from clean inputs: for each
/// attack, adversarial examples are crafted against the model on correctly
/// classified clean samples, and the detector's scores on the successful ones
/// are compared with its scores on clean samples: ROC AUC, and the true-
/// positive rate at the threshold calibrated for a target false-positive rate
/// on separate clean data (with the false-positive rate that threshold really
/// has on the evaluation's clean samples).
///
///   DetectionEvaluation e = evaluate_detector(*det, *model, calib.x, test,
///       {{"fgsm", {{"eps", 0.1}}}, {"pgd", {{"eps", 0.1}}}},
///       DetectionEvaluationOptions());

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"
#include "aegis/defenses/detectors/detector.h"

namespace aegis {

/// Area under the ROC curve of scores (higher = positive), ties counted half.
double roc_auc(const torch::Tensor& negative_scores, const torch::Tensor& positive_scores);

struct DetectionEvaluationOptions {
  double target_fpr_ = 0.05;  ///< false-positive rate the threshold is calibrated for, in (0, 1)
  int64_t batch_size_ = 256;
  DetectionEvaluationOptions& target_fpr(double v) { target_fpr_ = v; return *this; }
  DetectionEvaluationOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
};

struct AttackDetection {
  std::string attack;
  nlohmann::json options;
  int64_t attacked = 0;    ///< correctly classified clean samples attacked
  int64_t successful = 0;  ///< adversarial examples that fool the model (the positives)
  double auc = 0;          ///< clean vs successful adversarial
  double tpr = 0;          ///< at the calibrated threshold
  nlohmann::json to_json() const;
};

struct DetectionEvaluation {
  std::string detector;
  double threshold = 0;
  double target_fpr = 0;
  double clean_fpr = 0;  ///< measured on the evaluation's clean samples
  int64_t clean_samples = 0;
  std::vector<AttackDetection> attacks;
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// Calibrates `detector` on `calibration_x` (clean, disjoint from `data`),
/// then evaluates it on `data` against each attack (registry name, parameters).
DetectionEvaluation evaluate_detector(Detector& detector, Classifier& model, const torch::Tensor& calibration_x,
                                      const Dataset& data,
                                      const std::vector<std::pair<std::string, nlohmann::json>>& attacks,
                                      const DetectionEvaluationOptions& options = {});

}  // namespace aegis
