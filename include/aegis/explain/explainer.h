#pragma once
/// Explainer: attributions of a classifier's decision to its input features.
/// Every method takes a Classifier, a batch and the class to explain per
/// sample (default: the predicted class) and returns an Attribution shaped
/// like the input, plus, where the method defines one, the completeness gap
/// per sample: sum of attributions minus (f(x) - f(baseline)), where f is the
/// target class's logit. A batch gives the same result as its samples one at
/// a time; a fixed seed gives the same result bit for bit.
///
///   IntegratedGradients ig(IntegratedGradientsOptions().steps(32));
///   Attribution a = ig.explain(*model, x);              // explains the predicted classes
///   a.values;                                           // [batch, input_shape...]
///   a.gap;                                              // [batch]: how far from complete

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>

#include <ATen/core/Generator.h>

#include "aegis/core/classifier.h"

namespace aegis {

struct Attribution {
  std::string method;
  nlohmann::json options;
  torch::Tensor values;          ///< [batch, input_shape...], float
  torch::Tensor target;          ///< [batch] int64: the explained class
  torch::Tensor score;           ///< [batch]: f(x), the target's logit
  torch::Tensor baseline_score;  ///< [batch]: f(baseline); undefined when the method has no baseline
  torch::Tensor gap;             ///< [batch]: sum(values) - (score - baseline_score); undefined likewise
  torch::Tensor feature_mask;    ///< perturbation methods over feature groups: [batch, input_shape...] int64 group ids
  torch::Tensor fidelity;        ///< LIME: [batch] weighted R^2 of the local surrogate; undefined otherwise
  int64_t queries = 0;           ///< model evaluations spent (samples through the model)
  double seconds = 0;

  bool has_completeness() const { return gap.defined(); }
  /// Method, options, queries, seconds and per sample: target, score, the sum
  /// of attributions and (where defined) baseline score and gap.
  nlohmann::json to_json() const;
};

class Explainer {
 public:
  virtual ~Explainer() = default;
  virtual std::string name() const = 0;
  /// True for gradient methods (white-box); false for perturbation methods.
  virtual bool needs_gradients() const = 0;
  virtual nlohmann::json options_json() const = 0;

  /// Checks x (shape, range) and target ([batch] in range; undefined = the
  /// predicted class), runs the method, fills the scores and the gap.
  /// Never changes the model's parameters.
  Attribution explain(Classifier& model, const torch::Tensor& x, const torch::Tensor& target = {});
  /// explain() over consecutive batches of `batch_size` samples with a
  /// progress bar, results joined in order (queries and time summed).
  Attribution explain_batched(Classifier& model, const torch::Tensor& x, const torch::Tensor& target,
                              int64_t batch_size);
  /// The model evaluations explain() would spend on x (what `queries` will
  /// say), found by a dry run against a model of the same shape that answers
  /// zeros at no cost: what a gateway charges before it runs the method.
  int64_t planned_queries(const ModelMeta& meta, const torch::Tensor& x, const torch::Tensor& target = {});

 protected:
  friend class NoiseTunnel;  // averages attribute() over noisy copies without re-checking each
  /// values, and for methods with a baseline, baseline_score (the caller
  /// computes score and gap). x is float and detached, target int64.
  virtual Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) = 0;
};

namespace explain {

/// The target classes' logits [batch] and their gradients with respect to x
/// (white-box). One forward and one backward over the batch.
std::pair<torch::Tensor, torch::Tensor> target_gradient(Classifier& model, const torch::Tensor& x,
                                                        const torch::Tensor& target);

/// The target classes' logits [batch], without autograd.
torch::Tensor target_logit(Classifier& model, const torch::Tensor& x, const torch::Tensor& target);

/// Rows of `per_sample` ([batch, ...]) summed to [batch].
torch::Tensor per_sample_sum(const torch::Tensor& per_sample);

/// A generator for one sample, seeded by (seed, purpose) and the sample's
/// bytes: a sample gets the same random draws alone as in any batch.
at::Generator sample_generator(uint64_t seed, const torch::Tensor& sample, std::string_view purpose);

}  // namespace explain
}  // namespace aegis
