#pragma once
/// Counterfactuals: the smallest change to a sample that makes the model
/// decide for another class ("had these pixels been so, it would have said
/// Sneaker"). Found by the targeted minimal-perturbation attack optimisers:
///  - L2: Carlini-Wagner L2 (attacks/evasion/carlini_wagner.h), targeted at
///    the counterfactual class, binary-searching its constant per sample;
///  - L1: the elastic-net optimiser of EAD (Chen et al. 2018): C&W's margin
///    loss plus ||delta||_2^2 and an L1 penalty, minimised by FISTA with
///    soft thresholding at beta and projection onto the valid range, keeping the
///    successful result of smallest L1; the changes come out sparse.
/// The counterfactual class is by default the runner-up (the class other
/// than the explained one with the highest logit), or one fixed class.
/// White-box. The model's parameters never change.
///
/// As an Explainer, the attribution is the change itself, x_cf - x, and its
/// target the class explained (moved away from; default the predicted one).
/// find() gives the rest: the counterfactual inputs, their class, success and
/// the sizes of the change.
///
///   Counterfactual cf(CounterfactualOptions().norm(Norm::L1));
///   CounterfactualResult r = cf.find(*model, x);     // from the predicted classes to the runner-up
///   r.counterfactual; r.success; r.l1; r.l2;         // r.attribution.values == r.counterfactual - x

#include <cstdint>

#include "aegis/attacks/attack.h"
#include "aegis/explain/explainer.h"

namespace aegis {

struct CounterfactualOptions {
  int64_t to_ = -1;          ///< the class to move to; -1 (the default) = the runner-up per sample
  Norm norm_ = Norm::L2;     ///< L2 (C&W) or L1 (elastic net, sparse)
  int64_t steps_ = 200;      ///< optimiser steps per binary-search round, >= 1
  int64_t binary_search_steps_ = 6;  ///< rounds of the search over the loss constant, >= 1
  double initial_const_ = 0.1;       ///< first loss constant, > 0
  double lr_ = 0.01;                 ///< step size (C&W: Adam in tanh space; L1: FISTA), > 0
  double beta_ = 0.01;               ///< L1 only: soft threshold a step (EAD's beta), >= 0
  double kappa_ = 0;                 ///< required margin of the new class's logit over the rest, >= 0
  uint64_t seed_ = 0;

  CounterfactualOptions& to(int64_t v) { to_ = v; return *this; }
  CounterfactualOptions& norm(Norm v) { norm_ = v; return *this; }
  CounterfactualOptions& steps(int64_t v) { steps_ = v; return *this; }
  CounterfactualOptions& binary_search_steps(int64_t v) { binary_search_steps_ = v; return *this; }
  CounterfactualOptions& initial_const(double v) { initial_const_ = v; return *this; }
  CounterfactualOptions& lr(double v) { lr_ = v; return *this; }
  CounterfactualOptions& beta(double v) { beta_ = v; return *this; }
  CounterfactualOptions& kappa(double v) { kappa_ = v; return *this; }
  CounterfactualOptions& seed(uint64_t v) { seed_ = v; return *this; }
  /// Throws InvalidArgument for values out of range (to_ is checked against the model in find()).
  void validate() const;
  nlohmann::json to_json() const;
};

struct CounterfactualResult {
  Attribution attribution;       ///< values = counterfactual - x; target = the class moved away from
  torch::Tensor counterfactual;  ///< [batch, input_shape...] in the valid range (x where it failed)
  torch::Tensor to;              ///< [batch] int64: the class moved to
  torch::Tensor predicted;       ///< [batch] int64: the model's class for the counterfactual
  torch::Tensor success;         ///< [batch] bool: predicted == to
  torch::Tensor l1, l2;          ///< [batch] float: sizes of the change (0 where it failed)
  /// attribution.to_json() with, per sample, to, predicted, success, l1, l2, and the success rate.
  nlohmann::json to_json() const;
};

class Counterfactual : public Explainer {
 public:
  explicit Counterfactual(CounterfactualOptions options = {});
  std::string name() const override { return "counterfactual"; }
  bool needs_gradients() const override { return true; }
  nlohmann::json options_json() const override { return o_.to_json(); }

  /// Moves each sample away from `from` (default: its predicted class) to
  /// the options' class. Checks x as explain() does.
  CounterfactualResult find(Classifier& model, const torch::Tensor& x, const torch::Tensor& from = {});

 protected:
  Attribution attribute(Classifier& model, const torch::Tensor& x, const torch::Tensor& target) override;

 private:
  /// The counterfactual inputs for x moving from `from` to `to`.
  torch::Tensor search(Classifier& model, const torch::Tensor& x, const torch::Tensor& from, const torch::Tensor& to);
  /// The class to move to per sample: the options' class or the runner-up to `from`.
  torch::Tensor destination(Classifier& model, const torch::Tensor& x, const torch::Tensor& from) const;

  CounterfactualOptions o_;
};

}  // namespace aegis
