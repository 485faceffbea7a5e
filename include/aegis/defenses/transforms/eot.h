#pragma once
/// EOTClassifier: Expectation over Transformation (Athalye et al. 2018) as a
/// Classifier. Its logits are the mean of `samples` forward passes of a
/// randomised model (e.g. GaussianNoise), so the gradient any attack takes
/// through it is the mean gradient over the randomness. Attack the
/// EOTClassifier, then judge the adversarial examples on the defended model.
///
///   auto noisy = std::make_shared<GaussianNoise>(model, GaussianNoiseOptions(0.3));
///   EOTClassifier eot(noisy, 16);
///   AttackResult r = PGD(PGDOptions(0.1)).run(eot, x, y);
///   double fooled = (noisy->predict(r.x_adv) != y).to(torch::kFloat).mean().item<double>();

#include <cstdint>

#include "aegis/core/classifier.h"

namespace aegis {

class EOTClassifier : public Classifier {
 public:
  /// samples >= 1 (throws InvalidArgument otherwise).
  EOTClassifier(ClassifierPtr inner, int64_t samples);
  bool has_gradients() const override { return inner_->has_gradients(); }
  int64_t samples() const { return samples_; }

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override;

 private:
  ClassifierPtr inner_;
  int64_t samples_;
};

}  // namespace aegis
