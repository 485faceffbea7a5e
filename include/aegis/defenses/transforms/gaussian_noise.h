#pragma once
/// Gaussian-noise randomisation as an input defence: every query sees
/// x + N(0, sigma^2) (clipped to the valid range unless told otherwise), a
/// fresh draw each time from the wrapper's generator. A single-sample gradient
/// of a random model is noisy; evaluate with EOT (eot.h).
///
///   auto noisy = std::make_shared<GaussianNoise>(model, GaussianNoiseOptions(0.25));
///   auto eot = std::make_shared<EOTClassifier>(noisy, 16);   // what an attack should target

#include "aegis/defenses/transforms/transformed_classifier.h"

namespace aegis {

struct GaussianNoiseOptions {
  explicit GaussianNoiseOptions(double sigma) : sigma_(sigma) {}
  double sigma_;       ///< standard deviation, > 0
  bool clip_ = true;   ///< clip the noisy input into the valid range
  uint64_t seed_ = 0;  ///< the noise stream

  GaussianNoiseOptions& sigma(double v) { sigma_ = v; return *this; }
  GaussianNoiseOptions& clip(bool v) { clip_ = v; return *this; }
  GaussianNoiseOptions& seed(uint64_t v) { seed_ = v; return *this; }
};

class GaussianNoise : public TransformedClassifier {
 public:
  GaussianNoise(ClassifierPtr inner, GaussianNoiseOptions options);
  torch::Tensor transform(const torch::Tensor& x) override;
  bool randomized() const override { return true; }
  std::string name() const override { return "gaussian-noise"; }
  nlohmann::json options_json() const override {
    return {{"sigma", o_.sigma_}, {"clip", o_.clip_}, {"seed", o_.seed_}};
  }

 private:
  GaussianNoiseOptions o_;
};

}  // namespace aegis
