#pragma once
/// Mahalanobis detector (Lee et al. 2018) on the model's penultimate-layer
/// features (ScriptClassifier::features): class-conditional Gaussians with
/// one shared covariance fitted on clean training data; the score of an input
/// is its smallest Mahalanobis distance to a class mean (far from every class
/// = suspicious). This is the single-layer version without input
/// preprocessing or the layer ensemble of the paper.
///
///   auto det = MahalanobisDetector::fit(model, train.head(5000));
///   det->calibrate(clean_val.x, 0.05);

#include <memory>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/detectors/detector.h"

namespace aegis {

struct MahalanobisOptions {
  double ridge_ = 1e-3;  ///< added to the covariance diagonal (relative to its mean variance), > 0
  int64_t batch_size_ = 512;

  MahalanobisOptions& ridge(double v) { ridge_ = v; return *this; }
  MahalanobisOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
};

class MahalanobisDetector : public Detector {
 public:
  /// From fitted statistics: means [classes, d], precision [d, d].
  MahalanobisDetector(std::shared_ptr<ScriptClassifier> model, torch::Tensor means, torch::Tensor precision);
  /// Fits class means and the shared covariance on `data` (every class
  /// present). Throws Unsupported when the model has no features(),
  /// InvalidArgument for missing classes.
  static std::unique_ptr<MahalanobisDetector> fit(std::shared_ptr<ScriptClassifier> model, const Dataset& data,
                                                  const MahalanobisOptions& options = {});
  static std::unique_ptr<Detector> from_state(const nlohmann::json& state, ClassifierPtr model);

  std::string name() const override { return "mahalanobis"; }
  torch::Tensor score(const torch::Tensor& x) override;
  /// [batch, classes] squared distances of features to each class mean.
  torch::Tensor distances(const torch::Tensor& features) const;

 protected:
  nlohmann::json state_json() const override;

 private:
  std::shared_ptr<ScriptClassifier> model_;
  torch::Tensor means_, precision_;  // double
};

}  // namespace aegis
