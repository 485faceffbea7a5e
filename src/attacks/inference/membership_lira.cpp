#include "aegis/attacks/inference/membership_lira.h"

#include <torch/torch.h>

#include <chrono>

#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"

namespace aegis {

void LiraOptions::validate() const {
  AEGIS_CHECK(shadow_models_ >= 2, InvalidArgument, "lira: shadow models must be >= 2, got " << shadow_models_);
  AEGIS_CHECK(shadow_fraction_ > 0 && shadow_fraction_ <= 1, InvalidArgument,
              "lira: shadow fraction must be in (0, 1], got " << shadow_fraction_);
  AEGIS_CHECK(shadow_train_records_ >= 0, InvalidArgument,
              "lira: shadow train records must be >= 0, got " << shadow_train_records_);
  AEGIS_CHECK(access_.has_scores(), InvalidArgument,
              "lira needs scores; with label-only answers use the label-only attack");
  shadow_.validate();
  access_.validate();
}

MembershipResult lira_membership(Classifier& victim, const Dataset& attacker_data, const Dataset& members,
                                 const Dataset& nonmembers, const LiraOptions& o) {
  o.validate();
  check_membership_inputs(victim.meta(), members, nonmembers);
  AEGIS_CHECK(attacker_data.size() >= 10, InvalidArgument,
              "lira needs at least 10 attacker records, got " << attacker_data.size());
  check_compatible(victim.meta(), attacker_data);
  auto start = std::chrono::steady_clock::now();

  torch::Tensor cand_x = torch::cat({members.x, nonmembers.x});
  torch::Tensor cand_y = torch::cat({members.y, nonmembers.y});
  std::vector<torch::Tensor> phis;  // [shadows] x [candidates]
  Progress bar("lira shadow models", o.shadow_models_);
  AEGIS_CHECK(o.shadow_train_records_ <= attacker_data.size(), InvalidArgument,
              "lira: shadows cannot train on " << o.shadow_train_records_ << " records out of the attacker's "
                                               << attacker_data.size());
  const int64_t n_train = o.shadow_train_records_ > 0
                              ? o.shadow_train_records_
                              : std::max<int64_t>(2, int64_t(o.shadow_fraction_ * double(attacker_data.size())));
  for (int64_t s = 0; s < o.shadow_models_; ++s) {
    auto gen = make_generator(o.seed_, "lira-subset-" + std::to_string(s));
    torch::Tensor idx = torch::randperm(attacker_data.size(), gen, torch::kLong).narrow(0, 0, n_train);
    SurrogateModelOptions so = o.shadow_;
    so.train_.seed(derive_seed(o.seed_, "lira-train-" + std::to_string(s)));
    auto shadow = train_surrogate(victim.meta(), attacker_data.subset(idx), so);
    phis.push_back(scaled_confidence(query_answers(*shadow, cand_x, o.access_), cand_y).to(torch::kDouble));
    bar.advance(1);
  }
  bar.finish();
  torch::Tensor stack = torch::stack(phis);  // [S, N]
  torch::Tensor mu = stack.mean(0);
  torch::Tensor sigma = o.fixed_variance_ ? (stack - mu).pow(2).mean().sqrt().expand_as(mu) : stack.std(0);
  sigma = sigma.clamp_min(1e-3);

  int64_t q0 = victim.queries();
  torch::Tensor phi = scaled_confidence(query_answers(victim, cand_x, o.access_), cand_y).to(torch::kDouble);
  torch::Tensor score = (phi - mu) / sigma;
  MembershipResult r;
  r.attack = "lira-offline";
  r.access = o.access_;
  r.queries = victim.queries() - q0;
  r.member_scores = score.narrow(0, 0, members.size()).contiguous();
  r.nonmember_scores = score.narrow(0, members.size(), nonmembers.size()).contiguous();
  // One-sided test at 1 sigma above what unseen-record models produce.
  r.threshold = 1.0;
  r.metrics = membership_metrics(r.member_scores, r.nonmember_scores, r.threshold);
  r.details = {{"shadow_models", o.shadow_models_},
               {"shadow_train_records", n_train},
               {"fixed_variance", o.fixed_variance_},
               {"global_sigma", (stack - mu).pow(2).mean().sqrt().item<double>()},
               {"shadow", o.shadow_.to_json()}};
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

}  // namespace aegis
