#pragma once
/// Feature-squeezing detector (Xu, Evans and Qi 2018): the score of an input
/// is the largest L1 distance between the model's probabilities on the input
/// and on its squeezed versions (bit-depth reduction, median smoothing).
/// Adversarial perturbations tuned to the model rarely survive squeezing, so
/// their predictions move; clean inputs' do not. Calibrate the threshold on
/// clean validation data for a target false-positive rate.
///
///   FeatureSqueezingDetector det(model, FeatureSqueezingDetectorOptions().bits(1).median(3));
///   det.calibrate(clean_val.x, 0.05);
///   torch::Tensor flags = det.flag(x);

#include <cstdint>

#include "aegis/defenses/detectors/detector.h"

namespace aegis {

struct FeatureSqueezingDetectorOptions {
  int64_t bits_ = 1;    ///< bit-depth squeezer, 1..16 (0 = not used); Xu et al. use 1 bit for MNIST
  int64_t median_ = 3;  ///< odd median window (1 = not used); images only

  FeatureSqueezingDetectorOptions& bits(int64_t v) { bits_ = v; return *this; }
  FeatureSqueezingDetectorOptions& median(int64_t v) { median_ = v; return *this; }
  nlohmann::json to_json() const { return {{"bits", bits_}, {"median", median_}}; }
};

class FeatureSqueezingDetector : public Detector {
 public:
  /// Throws InvalidArgument when no squeezer is enabled or one does not fit the
  /// model's inputs.
  FeatureSqueezingDetector(ClassifierPtr model, FeatureSqueezingDetectorOptions options);
  std::string name() const override { return "feature-squeezing"; }
  torch::Tensor score(const torch::Tensor& x) override;
  /// BPDA: the squeezers are the identity in the backward pass, the model is
  /// differentiated on both branches (Carlini and Wagner 2017's attack).
  torch::Tensor score_graph(const torch::Tensor& x) override;
  std::string surrogate() const override { return "bpda"; }
  static std::unique_ptr<Detector> from_state(const nlohmann::json& state, ClassifierPtr model);

 protected:
  nlohmann::json state_json() const override { return o_.to_json(); }

 private:
  ClassifierPtr model_;
  FeatureSqueezingDetectorOptions o_;
};

}  // namespace aegis
