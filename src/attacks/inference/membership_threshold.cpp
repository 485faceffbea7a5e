#include "aegis/attacks/inference/membership_threshold.h"

#include <chrono>

#include <torch/torch.h>

#include "aegis/core/error.h"

namespace aegis {

void ThresholdMembershipOptions::validate() const {
  AEGIS_CHECK(signal_ == "loss" || signal_ == "confidence" || signal_ == "max-confidence", InvalidArgument,
              "threshold membership: signal must be loss, confidence or max-confidence, got '" << signal_ << "'");
  AEGIS_CHECK(batch_size_ >= 1, InvalidArgument, "batch size must be >= 1");
  access_.validate();
}

torch::Tensor threshold_signal(const torch::Tensor& observed, const torch::Tensor& y, const std::string& signal) {
  if (signal == "max-confidence") return std::get<0>(observed.to(torch::kDouble).max(1));
  torch::Tensor p = true_class_score(observed, y).to(torch::kDouble);
  if (signal == "confidence") return p;
  // -CE = -log(1 + sum_{j != y} p_j / p_y): from the small probabilities themselves, so
  // confident answers (p_y rounding to 1 in float) still rank by how confident they are.
  torch::Tensor pd = observed.to(torch::kDouble).clamp_min(0);
  torch::Tensor py = p.to(torch::kDouble).clamp_min(1e-12);
  return -torch::log1p((pd.sum(1) - p).clamp_min(0) / py);  // float64: ranks stay apart
}

MembershipResult threshold_membership(Classifier& model, const Dataset& members, const Dataset& nonmembers,
                                      const ThresholdMembershipOptions& o) {
  o.validate();
  check_membership_inputs(model.meta(), members, nonmembers);
  auto start = std::chrono::steady_clock::now();
  int64_t q0 = model.queries();
  MembershipResult r;
  r.attack = "threshold-" + o.signal_;
  r.access = o.access_;
  r.member_scores = threshold_signal(query_answers(model, members.x, o.access_, o.batch_size_), members.y, o.signal_);
  r.nonmember_scores =
      threshold_signal(query_answers(model, nonmembers.x, o.access_, o.batch_size_), nonmembers.y, o.signal_);
  if (o.threshold_) {
    r.threshold = *o.threshold_;
    r.details["threshold_source"] = "given";
  } else {
    r.threshold = r.member_scores.to(torch::kDouble).mean().item<double>();
    r.details["threshold_source"] = "mean member signal (Yeom et al.: the attacker knows the mean training loss)";
  }
  r.metrics = membership_metrics(r.member_scores, r.nonmember_scores, r.threshold);
  r.queries = model.queries() - q0;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
