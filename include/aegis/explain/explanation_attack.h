#pragma once
/// Explanation robustness attack (Ghorbani, Abid and Zou, "Interpretation of
/// Neural Networks is Fragile", AAAI 2019): a small L-inf perturbation that
/// keeps the predicted class but moves the attribution map away from the
/// original one. What it measures is how steerable an explanation is: a
/// reviewer shown a map that an attacker can move at will learns little.
///
///   ExplanationAttackResult r =
///       attack_explanation(*model, x, ExplanationAttackOptions(0.05).steps(30));
///   r.topk_overlap;         // [batch]: share of the original top-k features still in the top k
///   r.random_topk_overlap;  // the same for random sign noise of the same eps (the control)
///   r.label_kept;           // [batch]: x_adv has the original predicted class
///
/// The attack is the paper's top-k attack: projected sign-gradient steps
/// (PGD) that minimise the share of the map's mass on the original top-k
/// features, D(x) = sum_{top k} |m(x)| / sum |m(x)|, where m is the saliency
/// map (gradient of the predicted class's logit) or gradient x input. The
/// gradient of D needs second derivatives of the model, and a ReLU network
/// has none (its input gradient is piecewise constant). The paper swaps ReLU
/// for softplus while attacking; a Classifier is a closed model, so here the
/// Hessian-vector products are taken by central finite differences of input
/// gradients instead, H v ~ (g(x + h u) - g(x - h u)) / 2h * |v|_inf with
/// u = v / |v|_inf and h of the order of eps (fd_step; default eps). That is
/// the curvature of the model smoothed over the scale the attack moves at,
/// which crosses ReLU boundaries as the softplus surrogate does, needs only
/// first-order gradients (any white-box Classifier) and costs 2 gradient
/// passes of 4 x batch samples per step (all probes in one batch).
///
/// Every iterate stays inside the eps ball around x and the model's valid
/// range; with keep_label (the default) the result is the iterate with the
/// lowest top-k overlap among those that keep the predicted class (x itself
/// when none does), so label_kept holds for every sample. Features are
/// pixels on images (the map's absolute value summed over channels),
/// elements otherwise. White-box; the model's parameters never change.

#include <torch/types.h>

#include <nlohmann/json.hpp>
#include <string>

#include "aegis/core/classifier.h"

namespace aegis {

enum class ExplanationMapKind { Saliency, GradientXInput };
/// "saliency" or "gradient-x-input"; throws InvalidArgument otherwise.
ExplanationMapKind parse_explanation_map_kind(const std::string& name);
std::string explanation_map_kind_name(ExplanationMapKind kind);

struct ExplanationAttackOptions {
  explicit ExplanationAttackOptions(double eps) : eps_(eps) {}

  double eps_;            ///< L-inf radius, > 0 (in input units)
  int64_t steps_ = 30;    ///< PGD iterations, >= 1
  double step_size_ = 0;  ///< per step; 0: 2.5 * eps / steps
  int64_t top_k_ = 0;     ///< features in the compared top set; 0: 5% of the features (at least 1)
  ExplanationMapKind map_ = ExplanationMapKind::Saliency;  ///< the map attacked and measured
  double fd_step_ = 0;          ///< finite-difference step h for Hessian-vector products; 0: eps
  bool keep_label_ = true;      ///< return the best iterate that keeps the class (else the last iterate)
  bool random_control_ = true;  ///< also measure random sign noise of the same eps
  uint64_t seed_ = 0;           ///< the random control's noise (seeded per sample)

  ExplanationAttackOptions& eps(double v) { eps_ = v; return *this; }
  ExplanationAttackOptions& steps(int64_t v) { steps_ = v; return *this; }
  ExplanationAttackOptions& step_size(double v) { step_size_ = v; return *this; }
  ExplanationAttackOptions& top_k(int64_t v) { top_k_ = v; return *this; }
  ExplanationAttackOptions& map(ExplanationMapKind v) { map_ = v; return *this; }
  ExplanationAttackOptions& fd_step(double v) { fd_step_ = v; return *this; }
  ExplanationAttackOptions& keep_label(bool v) { keep_label_ = v; return *this; }
  ExplanationAttackOptions& random_control(bool v) { random_control_ = v; return *this; }
  ExplanationAttackOptions& seed(uint64_t v) { seed_ = v; return *this; }

  /// Throws InvalidArgument naming the first bad field.
  void validate() const;
  nlohmann::json to_json() const;
};

struct ExplanationAttackResult {
  torch::Tensor x_adv;                ///< [batch, input_shape...]
  torch::Tensor label;                ///< [batch] int64: the predicted class of x (kept as the map's target)
  torch::Tensor adv_pred;             ///< [batch] int64: the predicted class of x_adv
  torch::Tensor label_kept;           ///< [batch] bool: adv_pred == label
  torch::Tensor original_map;         ///< [batch, input_shape...]: the map of x
  torch::Tensor attacked_map;         ///< the map of x_adv
  torch::Tensor topk_overlap;         ///< [batch] double in [0, 1]: |topk(x) & topk(x_adv)| / k
  torch::Tensor spearman;             ///< [batch]: rank correlation of the two maps' feature relevance
  torch::Tensor map_distance;         ///< [batch]: L2 distance of the unit-norm relevance maps, in [0, sqrt 2]
  torch::Tensor linf;                 ///< [batch]: |x_adv - x|_inf
  torch::Tensor random_topk_overlap;  ///< [batch]: the control (undefined without random_control)
  torch::Tensor random_spearman;      ///< likewise
  int64_t top_k = 0;
  int64_t features = 0;
  int64_t queries = 0;  ///< samples through the model
  double seconds = 0;

  /// Mean of 1 - topk_overlap: the share of the top k the attack displaced.
  double mean_overlap_drop() const;
  /// The same for the random control (0 without it).
  double mean_random_overlap_drop() const;
  nlohmann::json to_json(bool per_sample = false) const;
};

/// Attacks the explanations of x ([batch, input_shape...], in the valid
/// range) on a white-box model. Throws Unsupported for a black-box model,
/// InvalidArgument for bad options or inputs.
ExplanationAttackResult attack_explanation(Classifier& model, const torch::Tensor& x,
                                           const ExplanationAttackOptions& options);

namespace explain {

/// One relevance per feature, [batch, F]: |values| summed over channels on
/// images ([batch, C, H, W]), |values| flattened otherwise.
torch::Tensor feature_relevance(const torch::Tensor& values);

/// Share of a's top-k features (by feature_relevance) among b's top k, per
/// sample, [batch] double in [0, 1]. Ties are broken by feature index.
torch::Tensor top_k_overlap(const torch::Tensor& a, const torch::Tensor& b, int64_t k);

/// L2 distance between the feature relevance maps of a and b, each scaled
/// to unit L2 norm (a zero map stays zero), per sample, [batch] double.
torch::Tensor normalised_map_distance(const torch::Tensor& a, const torch::Tensor& b);

/// The default k: 5% of `features`, at least 1.
int64_t default_top_k(int64_t features);

}  // namespace explain
}  // namespace aegis
