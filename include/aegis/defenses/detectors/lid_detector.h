#pragma once
/// Local intrinsic dimensionality detector (Ma et al. 2018, "Characterizing
/// adversarial subspaces using local intrinsic dimensionality"). At every
/// layer of the model (each map of ScriptClassifier::feature_maps, and the
/// logits) an input's LID is estimated from the distances r_1 <= ... <= r_k
/// of its activations to their k nearest neighbours among a fixed reference
/// set of clean inputs' activations:
///
///   LID = -( (1/k) sum_i log(r_i / r_k) )^-1
///
/// Adversarial regions have higher local dimensionality than the data
/// manifold, at the deep layers as well as the first one, so minimal-norm
/// attacks such as C&W that barely change the first layer still show. Each
/// layer's LID is standardised on clean fit data; the score is a weighted
/// sum: equal weights after fit(), or weights learned by logistic regression
/// on clean against adversarial inputs with fit_weights() (the paper trains
/// its classifier on one attack's examples).
///
/// The score is differentiable in the input (the k nearest distances are a
/// function of it), so score_graph() is exact and the adaptive attack can
/// optimise against it, as Athalye et al. (2018) did.
///
///   auto det = LIDDetector::fit(model, train.head(1200), LIDOptions().reference(200));
///   det->fit_weights(clean_val.x, fgsm_examples);  // optional
///   det->calibrate(clean_val.x, 0.05);

#include <memory>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"
#include "aegis/defenses/detectors/detector.h"

namespace aegis {

struct LIDOptions {
  int64_t k_ = 20;            ///< nearest neighbours, >= 2 and < reference
  int64_t reference_ = 200;   ///< clean inputs the neighbours are drawn from (the paper's minibatch: 100)
  /// Layers of feature_maps() to use, 0-based (negative: from the end);
  /// empty = all. The logits are always the last layer.
  std::vector<int64_t> layers_;
  int64_t batch_size_ = 256;

  LIDOptions& k(int64_t v) { k_ = v; return *this; }
  LIDOptions& reference(int64_t v) { reference_ = v; return *this; }
  LIDOptions& layers(std::vector<int64_t> v) { layers_ = std::move(v); return *this; }
  LIDOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
};

class LIDDetector : public Detector {
 public:
  /// From stored state: reference inputs [M, input_shape...], indices into
  /// feature_maps() (the logits are added as the last layer), each layer's
  /// mean and spread of the LID on clean data, weights (undefined = equal).
  LIDDetector(std::shared_ptr<ScriptClassifier> model, torch::Tensor reference, std::vector<int64_t> layers,
              int64_t k, torch::Tensor mean, torch::Tensor std, torch::Tensor weights = {});
  /// The first `reference` samples of `data` become the reference set; the
  /// rest (at least 2) standardise each layer's LID. Throws InvalidArgument
  /// for too little data or a bad k, Unsupported for a model without
  /// feature_maps()/features().
  static std::unique_ptr<LIDDetector> fit(std::shared_ptr<ScriptClassifier> model, const Dataset& data,
                                          const LIDOptions& options = {});
  static std::unique_ptr<Detector> from_state(const nlohmann::json& state, ClassifierPtr model);

  /// Learns the layer weights by logistic regression, clean against adversarial inputs.
  void fit_weights(const torch::Tensor& clean_x, const torch::Tensor& adversarial_x, double l2 = 1e-3);

  std::string name() const override { return "lid"; }
  torch::Tensor score(const torch::Tensor& x) override;
  torch::Tensor score_graph(const torch::Tensor& x) override;
  std::string surrogate() const override { return "exact"; }
  /// [batch, layers] raw LID estimates (no standardisation).
  torch::Tensor lids(const torch::Tensor& x);
  const std::vector<int64_t>& layers() const { return layers_; }
  torch::Tensor weights() const { return weights_; }

 protected:
  nlohmann::json state_json() const override;

 private:
  torch::Tensor lids_graph(const torch::Tensor& x);                    // differentiable in x
  std::vector<torch::Tensor> activations(const torch::Tensor& x);      // per layer, [B, d]
  const std::vector<torch::Tensor>& reference_activations();

  std::shared_ptr<ScriptClassifier> model_;
  torch::Tensor reference_;
  std::vector<int64_t> layers_;
  int64_t k_;
  torch::Tensor mean_, std_, weights_;  // [layers] double
  std::vector<torch::Tensor> reference_acts_;
};

}  // namespace aegis
