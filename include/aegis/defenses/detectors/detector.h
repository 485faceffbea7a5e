#pragma once
/// Detector: scores inputs for how likely they are adversarial (or otherwise
/// abnormal), with a threshold calibrated on clean data for a target
/// false-positive rate. Used by `aegis detect-eval`, the audit and the
/// gateway's runtime detection. Serialisable as JSON next to the model
/// (`model.pt.detector.json`), rebuilt with load_detector().
///
///   auto det = ...;                       // e.g. a feature-squeezing detector
///   det->calibrate(clean_val.x, 0.05);    // 5% of clean inputs flagged
///   torch::Tensor flags = det->flag(x);   // [batch] bool
///   save_detector(*det, "model.pt.detector.json");

#include <memory>
#include <string>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/core/classifier.h"

namespace aegis {

class Detector {
 public:
  virtual ~Detector() = default;
  /// Registry name, e.g. "feature-squeezing", "mahalanobis".
  virtual std::string name() const = 0;
  /// [batch] float scores; higher means more likely adversarial.
  virtual torch::Tensor score(const torch::Tensor& x) = 0;
  /// [batch] bool: score above the threshold.
  torch::Tensor flag(const torch::Tensor& x) { return score(x) > threshold_; }

  /// A differentiable stand-in for score(), for attacks that optimise against
  /// the detector (adaptive evaluation): its values equal score()'s, its
  /// gradient flows back to `x` (which requires grad). Where the detector is
  /// not differentiable (a squeezer, an input-preprocessing step) the
  /// non-differentiable part is replaced by the identity in the backward pass
  /// (BPDA, Athalye et al. 2018). Throws Unsupported when the detector has no
  /// such surrogate.
  virtual torch::Tensor score_graph(const torch::Tensor& x);
  /// How score_graph() relates to score(): "exact" (the same function),
  /// "bpda" (identity in the backward pass where score() is not
  /// differentiable), "none" (no surrogate).
  virtual std::string surrogate() const { return "none"; }
  /// True when score() is random (an adaptive attack then averages its
  /// gradient over several draws: EOT).
  virtual bool randomized() const { return false; }

  /// Sets the threshold to the (1 - fpr) quantile of the scores of clean
  /// inputs, so about `fpr` of clean inputs are flagged.
  void calibrate(const torch::Tensor& clean_x, double fpr);
  double threshold() const { return threshold_; }
  void set_threshold(double t) { threshold_ = t; }
  /// Records the false-positive rate a threshold was calibrated for (when it
  /// is restored from a file); NaN = not calibrated.
  void set_calibrated_fpr(double fpr) { calibrated_fpr_ = fpr; }
  /// The false-positive rate the threshold was calibrated for (NaN if never).
  double calibrated_fpr() const { return calibrated_fpr_; }

  /// Everything needed to rebuild the detector for the same model:
  /// {"type": name(), "threshold": ..., "calibrated_fpr": ..., "state": {...}}.
  nlohmann::json to_json() const;

 protected:
  /// Detector-specific state (parameters, fitted statistics).
  virtual nlohmann::json state_json() const = 0;

  double threshold_ = 0.0;
  double calibrated_fpr_ = std::numeric_limits<double>::quiet_NaN();
};

/// Rebuilds a detector from Detector::to_json() for `model`. Throws
/// InvalidArgument for an unknown type, CorruptData for malformed state.
std::unique_ptr<Detector> load_detector(const nlohmann::json& j, ClassifierPtr model);
void save_detector(const Detector& d, const std::string& path);
std::unique_ptr<Detector> load_detector_file(const std::string& path, ClassifierPtr model);

}  // namespace aegis
