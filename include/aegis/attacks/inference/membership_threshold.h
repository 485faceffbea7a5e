#pragma once
/// Threshold membership inference (Yeom et al. 2018): a model's loss is
/// lower (its confidence higher) on the records it was trained on. One query
/// per candidate, black-box. Signals:
///  - "loss":           -cross-entropy of the true label (from the observed view);
///  - "confidence":     the observed probability of the true label;
///  - "max-confidence": the largest observed probability (needs no label).
/// Under label-only access "loss" and "confidence" reduce to the gap attack
/// (member when correctly classified).
///
/// The decision threshold is `threshold_` when given; otherwise Yeom's: the
/// mean signal over the members, i.e. the attacker knows the average training
/// loss (stated in the result's details).
///
///   auto r = threshold_membership(*model, members, nonmembers, ThresholdMembershipOptions().signal("loss"));

#include <optional>
#include <string>

#include "aegis/attacks/inference/membership.h"
#include "aegis/core/classifier.h"

namespace aegis {

struct ThresholdMembershipOptions {
  std::string signal_ = "loss";  ///< "loss", "confidence" or "max-confidence"
  OutputAccess access_;          ///< default: full probabilities
  std::optional<double> threshold_;  ///< in score units (loss: -CE); default Yeom's mean member signal
  int64_t batch_size_ = 512;
  ThresholdMembershipOptions& signal(std::string v) { signal_ = std::move(v); return *this; }
  ThresholdMembershipOptions& access(OutputAccess v) { access_ = v; return *this; }
  ThresholdMembershipOptions& threshold(double v) { threshold_ = v; return *this; }
  ThresholdMembershipOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  void validate() const;
};

/// Per-sample score (higher = member, float64) of a view [B, C] for the signal.
torch::Tensor threshold_signal(const torch::Tensor& observed, const torch::Tensor& y, const std::string& signal);

MembershipResult threshold_membership(Classifier& model, const Dataset& members, const Dataset& nonmembers,
                                      const ThresholdMembershipOptions& options = {});

}  // namespace aegis
