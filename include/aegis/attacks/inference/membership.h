#pragma once
/// Membership inference: shared vocabulary. An attack gives every candidate
/// record a score (higher = "more likely it was in the training set"); we
/// know which candidates really were (members) and which were not
/// (non-members), and measure the attack the way the field now expects
/// (Carlini et al. 2022): ROC AUC, balanced accuracy, and above all the
/// true-positive rate at a low false-positive rate (0.1% and 1%), with the
/// ROC curve kept for the report. Maps to MITRE ATLAS AML.T0024.000 (Infer
/// Training Data Membership) and OWASP ML04 (Membership Inference Attack).
///
///   MembershipResult r = threshold_membership(*model, members, nonmembers, {});
///   r.metrics.auc; r.metrics.tpr_at_1pct_fpr; r.to_json();
///
/// The attacks, one per header: membership_threshold.h (Yeom et al. 2018),
/// membership_shadow.h (Shokri et al. 2017), membership_lira.h (Carlini et
/// al. 2022, offline), membership_label_only.h (Choquette-Choo et al. 2021).

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/attacks/output_access.h"
#include "aegis/core/dataset.h"

namespace aegis {

/// Quality of a scoring of members against non-members.
struct MembershipMetrics {
  int64_t members = 0, nonmembers = 0;
  double auc = 0.5;  ///< area under the ROC curve (ties count half)
  /// Highest TPR whose FPR is at most 0.1% / 1%. With fewer than 1000 (100)
  /// non-members no threshold has FPR strictly between 0 and the target, so
  /// this is the TPR at FPR 0: a lower bound (see fpr_resolution).
  double tpr_at_0_1pct_fpr = 0, tpr_at_1pct_fpr = 0;
  double fpr_resolution = 1;  ///< 1 / non-members: the smallest non-zero FPR measurable
  /// Balanced accuracy (TPR + TNR) / 2 at the attack's own decision threshold,
  /// absent when the attack has none.
  std::optional<double> balanced_accuracy;
  /// Best balanced accuracy over all thresholds: what an attacker who could
  /// tune the threshold on these very labels would get (an upper bound).
  double best_balanced_accuracy = 0.5;
  /// The ROC curve on a fixed FPR grid (log-spaced below 1%, then linear).
  std::vector<double> roc_fpr, roc_tpr;
  nlohmann::json to_json() const;
};

/// Measures scores (higher = member). `threshold`: the attack's own decision
/// rule "member when score >= threshold". Throws InvalidArgument on empty
/// or non-finite scores.
MembershipMetrics membership_metrics(const torch::Tensor& member_scores, const torch::Tensor& nonmember_scores,
                                     std::optional<double> threshold = {});

struct MembershipResult {
  std::string attack;  ///< "threshold-loss", "shadow", "lira-offline", "label-only", ...
  OutputAccess access;
  MembershipMetrics metrics;
  torch::Tensor member_scores, nonmember_scores;  ///< [members], [nonmembers]
  std::optional<double> threshold;
  int64_t queries = 0;  ///< queries charged to the victim
  double seconds = 0;
  nlohmann::json details = nlohmann::json::object();  ///< attack-specific (shadow accuracy, ...)
  /// Summary with ATLAS/OWASP mapping; the per-candidate scores when asked.
  nlohmann::json to_json(bool scores = false) const;
};

/// Observed probability of each sample's own label from an attacker's view
/// [B, C] (0 where a top-k answer left it out).
torch::Tensor true_class_score(const torch::Tensor& observed, const torch::Tensor& y);
/// LiRA's logit-scaled confidence log p_y - log sum_{j != y} p_j of a view,
/// in float64, with probabilities floored at 1e-300 so rounded and top-k views stay finite.
torch::Tensor scaled_confidence(const torch::Tensor& observed, const torch::Tensor& y);

/// Throws ShapeMismatch/InvalidArgument unless members and non-members are
/// non-empty and fit the model.
void check_membership_inputs(const ModelMeta& meta, const Dataset& members, const Dataset& nonmembers);

}  // namespace aegis
