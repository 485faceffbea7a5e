#include "aegis/attacks/inference/membership.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"

namespace aegis {

namespace {

std::vector<double> to_vector(const torch::Tensor& t) {
  torch::Tensor c = t.detach().to(torch::kDouble).contiguous().flatten();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}

/// FPR grid of the saved curve: log-spaced from 1e-4 to 1e-2, then linear to 1.
std::vector<double> fpr_grid() {
  std::vector<double> g = {0.0};
  for (int i = 0; i <= 20; ++i) g.push_back(std::pow(10.0, -4.0 + 2.0 * i / 20.0));
  for (int i = 1; i <= 99; ++i) g.push_back(0.01 + 0.99 * i / 99.0);
  return g;
}

}  // namespace

MembershipMetrics membership_metrics(const torch::Tensor& member_scores, const torch::Tensor& nonmember_scores,
                                     std::optional<double> threshold) {
  AEGIS_CHECK(member_scores.defined() && member_scores.numel() > 0, InvalidArgument, "no member scores");
  AEGIS_CHECK(nonmember_scores.defined() && nonmember_scores.numel() > 0, InvalidArgument, "no non-member scores");
  std::vector<double> in = to_vector(member_scores), out = to_vector(nonmember_scores);
  for (double v : in) AEGIS_CHECK(std::isfinite(v), InvalidArgument, "member scores must be finite");
  for (double v : out) AEGIS_CHECK(std::isfinite(v), InvalidArgument, "non-member scores must be finite");
  MembershipMetrics m;
  m.members = int64_t(in.size());
  m.nonmembers = int64_t(out.size());
  m.fpr_resolution = 1.0 / double(m.nonmembers);

  // (score, is_member), walked from the highest score down, equal scores as one
  // step.
  std::vector<std::pair<double, bool>> all;
  for (double v : in) all.emplace_back(v, true);
  for (double v : out) all.emplace_back(v, false);
  std::sort(all.begin(), all.end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::vector<double> fprs = {0.0}, tprs = {0.0};
  int64_t tp = 0, fp = 0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) {
      (all[j].second ? tp : fp) += 1;
      ++j;
    }
    fprs.push_back(double(fp) / double(m.nonmembers));
    tprs.push_back(double(tp) / double(m.members));
    i = j;
  }
  double auc = 0, best_bal = 0.5;
  for (size_t i = 1; i < fprs.size(); ++i) {
    auc += (fprs[i] - fprs[i - 1]) * (tprs[i] + tprs[i - 1]) / 2;
    best_bal = std::max(best_bal, (tprs[i] + 1 - fprs[i]) / 2);
  }
  m.auc = auc;
  m.best_balanced_accuracy = best_bal;
  auto tpr_at = [&](double target) {
    double best = 0;
    for (size_t i = 0; i < fprs.size(); ++i)
      if (fprs[i] <= target + 1e-12) best = std::max(best, tprs[i]);
    return best;
  };
  m.tpr_at_0_1pct_fpr = tpr_at(0.001);
  m.tpr_at_1pct_fpr = tpr_at(0.01);
  for (double f : fpr_grid()) {
    m.roc_fpr.push_back(f);
    m.roc_tpr.push_back(tpr_at(f));
  }
  if (threshold) {
    double tpr = double(std::count_if(in.begin(), in.end(), [&](double v) { return v >= *threshold; })) / in.size();
    double fpr = double(std::count_if(out.begin(), out.end(), [&](double v) { return v >= *threshold; })) / out.size();
    m.balanced_accuracy = (tpr + 1 - fpr) / 2;
  }
  return m;
}

nlohmann::json MembershipMetrics::to_json() const {
  nlohmann::json j = {{"members", members},
                      {"nonmembers", nonmembers},
                      {"auc", auc},
                      {"tpr_at_0.1pct_fpr", tpr_at_0_1pct_fpr},
                      {"tpr_at_1pct_fpr", tpr_at_1pct_fpr},
                      {"fpr_resolution", fpr_resolution},
                      {"best_balanced_accuracy", best_balanced_accuracy},
                      {"roc", {{"fpr", roc_fpr}, {"tpr", roc_tpr}}}};
  j["balanced_accuracy"] = balanced_accuracy ? nlohmann::json(*balanced_accuracy) : nlohmann::json(nullptr);
  return j;
}

nlohmann::json MembershipResult::to_json(bool scores) const {
  nlohmann::json j = {
      {"attack", attack},           {"kind", "membership-inference"}, {"atlas", "AML.T0024.000"}, {"owasp", "ML04"},
      {"access", access.to_json()}, {"metrics", metrics.to_json()},   {"queries", queries},       {"seconds", seconds},
      {"details", details}};
  j["threshold"] = threshold ? nlohmann::json(*threshold) : nlohmann::json(nullptr);
  if (scores) {
    j["member_scores"] = to_vector(member_scores);
    j["nonmember_scores"] = to_vector(nonmember_scores);
  }
  return j;
}

torch::Tensor true_class_score(const torch::Tensor& observed, const torch::Tensor& y) {
  return observed.gather(1, y.to(torch::kLong).unsqueeze(1)).squeeze(1);
}

torch::Tensor scaled_confidence(const torch::Tensor& observed, const torch::Tensor& y) {
  torch::Tensor p = observed.to(torch::kDouble).clamp_min(0);
  torch::Tensor py = true_class_score(p, y);
  torch::Tensor rest = p.sum(1) - py;
  return py.clamp_min(1e-300).log() - rest.clamp_min(1e-300).log();  // float64
}

void check_membership_inputs(const ModelMeta& meta, const Dataset& members, const Dataset& nonmembers) {
  AEGIS_CHECK(members.size() > 0, InvalidArgument, "membership inference needs member candidates");
  AEGIS_CHECK(nonmembers.size() > 0, InvalidArgument, "membership inference needs non-member candidates");
  check_compatible(meta, members);
  check_compatible(meta, nonmembers);
}

}  // namespace aegis
