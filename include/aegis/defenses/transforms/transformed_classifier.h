#pragma once
/// TransformedClassifier: the base of the input-level defences. It wraps a
/// model and applies an input transformation t(x) before it (squeezing,
/// smoothing, noise). Such transformations are non-differentiable (rounding,
/// medians) or random, which makes a plain gradient attack see no gradient or
/// a noisy one: "robustness" that is only masked gradients. Hence:
///  - gradients default to BPDA (Athalye et al. 2018), straight-through:
///    forward computes model(t(x)), backward treats t as the identity
///    (`x + (t(x) - x).detach()`); Gradient::Exact differentiates through t
///    as autograd can (what a naive attacker sees; for tests and evidence);
///  - randomness comes from the wrapper's own generator (seed() and
///    randomized()), so an evaluation can use EOT (eot.h: averaging over
///    transformation samples) and reproduce its runs.
///
///   auto squeezed = std::make_shared<FeatureSqueezing>(model, FeatureSqueezingOptions().bits(3));
///   PGD(PGDOptions(0.1)).run(*squeezed, x, y);   // BPDA by default

#include <ATen/core/Generator.h>

#include <cstdint>
#include <string>

#include "aegis/core/classifier.h"

namespace aegis {

class TransformedClassifier : public Classifier {
 public:
  enum class Gradient { BPDA, Exact };

  /// The transformation alone, on a batch in the valid range.
  virtual torch::Tensor transform(const torch::Tensor& x) = 0;
  /// True when transform() draws random numbers (then attacks need EOT).
  virtual bool randomized() const { return false; }
  /// Registry-style name ("feature-squeezing", "spatial-smoothing",
  /// "gaussian-noise").
  virtual std::string name() const = 0;
  virtual nlohmann::json options_json() const = 0;

  void set_gradient(Gradient g) { gradient_ = g; }
  Gradient gradient() const { return gradient_; }
  /// Restarts the transformation's random stream.
  void seed(uint64_t s);

  const ClassifierPtr& inner() const { return inner_; }
  bool has_gradients() const override { return inner_->has_gradients(); }

 protected:
  explicit TransformedClassifier(ClassifierPtr inner);
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override;
  /// Records the defence in the metadata's provenance (call at the end of the
  /// derived constructor).
  void record_provenance();

  ClassifierPtr inner_;
  Gradient gradient_ = Gradient::BPDA;
  at::Generator gen_;
};

}  // namespace aegis
