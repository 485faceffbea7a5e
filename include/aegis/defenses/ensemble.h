#pragma once
/// EnsembleClassifier: several models (different seeds or architectures)
/// answering as one Classifier, so every attack, detector and the gateway use
/// an ensemble exactly as a single model. Members are combined by averaging
/// their logits, or their probabilities (then the ensemble's "logits" are the
/// log of the mean probabilities, whose softmax is that mean). Differentiable
/// when every member is, so white-box attacks see the whole ensemble.
///
///   auto ens = std::make_shared<EnsembleClassifier>(
///       std::vector<ClassifierPtr>{a, b, c},
///       EnsembleOptions().combine("probabilities"));
///   auto r = PGD(PGDOptions(0.1)).run(*ens, x, y);

#include <string>
#include <vector>

#include "aegis/core/classifier.h"

namespace aegis {

struct EnsembleOptions {
  std::string combine_ = "probabilities";  ///< "probabilities" or "logits"
  std::vector<double> weights_;            ///< one per member, >= 0, not all 0; empty = equal

  EnsembleOptions& combine(std::string v) { combine_ = std::move(v); return *this; }
  EnsembleOptions& weights(std::vector<double> v) { weights_ = std::move(v); return *this; }
};

class EnsembleClassifier : public Classifier {
 public:
  /// Throws InvalidArgument for no members, bad weights or an unknown
  /// combination, ShapeMismatch when members disagree on input shape,
  /// classes or valid range.
  EnsembleClassifier(std::vector<ClassifierPtr> members, EnsembleOptions options = {});

  bool has_gradients() const override;
  const std::vector<ClassifierPtr>& members() const { return members_; }
  const EnsembleOptions& options() const { return o_; }

 protected:
  torch::Tensor compute_logits(const torch::Tensor& x, bool grad) override;

 private:
  std::vector<ClassifierPtr> members_;
  EnsembleOptions o_;
  std::vector<double> w_;  // normalised weights
};

}  // namespace aegis
