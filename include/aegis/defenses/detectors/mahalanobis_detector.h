#pragma once
/// Mahalanobis detector (Lee et al. 2018) with the paper's feature ensemble:
/// for each of the model's layers (ScriptClassifier::feature_maps: for the
/// built-in cnn the two convolutions' ReLU maps and the penultimate
/// features), class-conditional Gaussians with one shared covariance are
/// fitted on clean training data, and an input's layer score is the log of
/// its smallest Mahalanobis distance to a class mean (far from every class =
/// suspicious), standardised by its mean and spread on the fit data. The
/// detector's score is a weighted sum of the layer scores: equal weights
/// after fit(), or weights learned by logistic regression on clean against
/// adversarial validation inputs with fit_weights() (the paper tunes them on
/// FGSM examples, which then generalise to other attacks).
///
/// A convolutional map [B, C, H, W] is summarised per channel by its mean
/// and standard deviation over positions (the paper uses the mean only; the
/// spread is what an Linf perturbation's high-frequency noise changes most:
/// on the Fashion-MNIST cnn the first layer's AUC against PGD goes from
/// 0.915 to 0.968). Optional input preprocessing (the paper's): the input is
/// moved by `noise` in the direction that lowers its score before scoring.
///
///   auto det = MahalanobisDetector::fit(model, train.head(5000));
///   det->fit_weights(clean_val.x, fgsm_examples);  // optional
///   det->calibrate(clean_val.x, 0.05);

#include <memory>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/detectors/detector.h"

namespace aegis {

struct MahalanobisOptions {
  double ridge_ = 1e-3;  ///< added to the covariance diagonal (relative to its mean variance), > 0
  int64_t batch_size_ = 512;
  /// Layers of feature_maps() to use, 0-based (negative: from the end, -1 =
  /// the penultimate features); empty = all.
  std::vector<int64_t> layers_;
  /// Input preprocessing step (Linf, in input units), >= 0; 0 = off.
  double noise_ = 0;

  MahalanobisOptions& ridge(double v) { ridge_ = v; return *this; }
  MahalanobisOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  MahalanobisOptions& layers(std::vector<int64_t> v) { layers_ = std::move(v); return *this; }
  MahalanobisOptions& noise(double v) { noise_ = v; return *this; }
};

class MahalanobisDetector : public Detector {
 public:
  /// Fitted statistics of one layer.
  struct Layer {
    int64_t index = 0;        ///< position in feature_maps()
    torch::Tensor means;      ///< [classes, d] double
    torch::Tensor precision;  ///< [d, d] double
    double log_mean = 0;      ///< mean of the log distance on the fit data
    double log_std = 1;       ///< its standard deviation (> 0)
  };

  /// From fitted statistics; `weights` [layers] (undefined = equal weights).
  MahalanobisDetector(std::shared_ptr<ScriptClassifier> model, std::vector<Layer> layers,
                      torch::Tensor weights = {}, double noise = 0);
  /// Fits each layer's class means and shared covariance on `data` (every
  /// class present). Throws Unsupported when the model has no features(),
  /// InvalidArgument for missing classes or a layer index out of range.
  static std::unique_ptr<MahalanobisDetector> fit(std::shared_ptr<ScriptClassifier> model, const Dataset& data,
                                                  const MahalanobisOptions& options = {});
  static std::unique_ptr<Detector> from_state(const nlohmann::json& state, ClassifierPtr model);

  /// Learns the layer weights by L2-regularised logistic regression, clean
  /// inputs against adversarial ones (e.g. FGSM examples on validation data).
  void fit_weights(const torch::Tensor& clean_x, const torch::Tensor& adversarial_x, double l2 = 1e-3);

  std::string name() const override { return "mahalanobis"; }
  torch::Tensor score(const torch::Tensor& x) override;
  /// Exact without input preprocessing; with it, the preprocessing step is
  /// the identity in the backward pass (BPDA).
  torch::Tensor score_graph(const torch::Tensor& x) override;
  std::string surrogate() const override { return noise_ > 0 ? "bpda" : "exact"; }
  /// [batch, layers] standardised log distances (no preprocessing).
  torch::Tensor layer_scores(const torch::Tensor& x);
  /// [batch, classes] squared distances of one layer's summarised features.
  torch::Tensor distances(size_t layer, const torch::Tensor& features) const;
  const std::vector<Layer>& layers() const { return layers_; }
  torch::Tensor weights() const { return weights_; }

 protected:
  nlohmann::json state_json() const override;

 private:
  torch::Tensor layer_scores_graph(const torch::Tensor& x);  // differentiable in x
  torch::Tensor preprocess(const torch::Tensor& x);          // the input-preprocessing step, detached

  std::shared_ptr<ScriptClassifier> model_;
  std::vector<Layer> layers_;
  torch::Tensor weights_;  // [layers] double
  double noise_ = 0;
};

}  // namespace aegis
