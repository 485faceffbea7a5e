#pragma once
/// Empirical audit of a differential-privacy claim in one training run
/// (Steinke, Nasr and Jagielski 2023, "Privacy Auditing with One (1)
/// Training Run"). m canaries are drawn, each included in the training set
/// with probability 1/2 independently; after training, the auditor scores
/// every canary, guesses "included" for the k highest scores and "excluded"
/// for the k lowest (abstaining on the rest), and counts its correct guesses
/// v out of r = 2k. Under (eps, delta)-DP the number of correct guesses is
/// stochastically dominated by Binomial(r, e^eps / (1 + e^eps)) up to a
/// delta term (their Theorem 3.3 / Proposition 5.7), so a v that would be
/// too unlikely under that null rejects eps: the largest rejected eps at the
/// chosen confidence is a lower bound on the true epsilon. A correct DP
/// implementation can never give a lower bound above its claim (except with
/// the 5% the confidence allows); a bug (noise or clipping off) does.
///
/// The canaries here live in input space: held-out samples whose labels are
/// moved to a random other class, which a model fits only by memorising
/// them; the score is minus the canary's loss on its (wrong) label. This is
/// the black-box variant: its bound is valid but loose (far below the claim
/// for a correct run); gradient canaries, which the paper uses for
/// near-tight white-box bounds, are not implemented.
///
///   DpAuditBound b = dp_audit_bound(scores, included, /*delta=*/1e-5, DpAuditOptions());
///   b.epsilon_lower_bound;   // <= the claimed epsilon for a correct DP-SGD
///
///   DpAuditResult r = one_run_audit(*fresh, train, pool, trainer, 1e-5, DpAuditOptions().canaries(500));

#include <cstdint>
#include <functional>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/attacks/inference/membership.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"

namespace aegis {

struct DpAuditOptions {
  int64_t canaries_ = 500;   ///< m, >= 2
  double confidence_ = 0.95;  ///< of the lower bound, in (0, 1)
  /// Guess counts tried, as fractions of m guessed on each side (k = fraction
  /// * m included guesses and as many excluded); the bound is the best over
  /// them with a Bonferroni correction (confidence split between the tries),
  /// so trying several never inflates it.
  std::vector<double> guess_fractions_ = {0.05, 0.1, 0.2, 0.5};
  uint64_t seed_ = 0;  ///< canary choice, relabelling and inclusion
  int64_t batch_size_ = 256;  ///< scoring batch

  DpAuditOptions& canaries(int64_t v) { canaries_ = v; return *this; }
  DpAuditOptions& confidence(double v) { confidence_ = v; return *this; }
  DpAuditOptions& guess_fractions(std::vector<double> v) { guess_fractions_ = std::move(v); return *this; }
  DpAuditOptions& seed(uint64_t v) { seed_ = v; return *this; }
  DpAuditOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }

  /// InvalidArgument naming the first bad field.
  void validate() const;
  nlohmann::json to_json() const;
};

/// P[at least v of r guesses correct] when the guesses come from an
/// (eps, delta)-DP mechanism over m canaries each included with probability
/// 1/2 (the paper's p-value, computed in log space in double precision).
double dp_audit_p_value(int64_t m, int64_t r, int64_t v, double eps, double delta);

/// The largest eps the observation (m, r, v) rejects at `confidence`: a
/// lower bound on the epsilon of the mechanism (0 when it rejects none).
/// Bisection to 1e-9.
double dp_audit_epsilon_lower_bound(int64_t m, int64_t r, int64_t v, double delta, double confidence = 0.95);

/// The bound from scores (higher = more likely included) and the truth.
struct DpAuditBound {
  double epsilon_lower_bound = 0;
  int64_t canaries = 0;       ///< m
  int64_t included = 0;       ///< canaries that were in the training set
  int64_t guesses = 0;        ///< r of the best try
  int64_t correct = 0;        ///< v of the best try
  double confidence = 0.95;
  double delta = 0;
  int tries = 0;  ///< guess counts tried (the Bonferroni divisor)
  nlohmann::json to_json() const;
};

/// Throws InvalidArgument on mismatched or non-finite scores.
DpAuditBound dp_audit_bound(const torch::Tensor& scores, const torch::Tensor& included, double delta,
                            const DpAuditOptions& options);

/// The canaries of an audit: `m` samples of `pool` (its first m after a
/// seeded shuffle) relabelled to a random other class, and which of them go
/// into training.
struct Canaries {
  Dataset data;           ///< [m] canaries with their new labels
  torch::Tensor included;  ///< [m] bool
  Dataset rest;            ///< the pool's other samples, true labels (empty when m = pool size)
};
Canaries make_canaries(const Dataset& pool, int64_t m, int64_t num_classes, uint64_t seed);

/// Scores of the canaries on a trained model: minus the cross-entropy on
/// their labels (higher = the model fits them = more likely trained on).
torch::Tensor canary_scores(Classifier& model, const Dataset& canaries, int64_t batch_size);

/// Trains `model` in place on `data` and returns the epsilon it claims for
/// that run (+infinity for a non-private recipe).
using AuditTrainer = std::function<double(ScriptClassifier& model, const Dataset& data)>;

struct DpAuditResult {
  DpAuditBound bound;
  double claimed_epsilon = 0;  ///< what the trainer claimed for this very run
  bool violated = false;       ///< lower bound above the claim
  /// The canary scores read as a membership attack (included vs excluded).
  MembershipMetrics membership;
  double test_accuracy = -1;  ///< on the non-canary pool left over, when any (-1 = none)
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// The whole experiment: draws canaries from `pool` (which must be disjoint
/// from `train`), trains `model` on train + the included canaries with
/// `trainer`, scores every canary and bounds epsilon.
DpAuditResult one_run_audit(ScriptClassifier& model, const Dataset& train, const Dataset& pool,
                            const AuditTrainer& trainer, double delta, const DpAuditOptions& options);

}  // namespace aegis
