#pragma once
/// Shadow-model membership inference (Shokri et al. 2017). The attacker
/// trains shadow models like the victim on its own data (each on a random
/// half, the other half held out), learns from the shadows' answers what a
/// "seen" record looks like, and applies that attack model to the victim's
/// answers. Black-box: one query per candidate; the shadows are the
/// attacker's own and are queried through the same OutputAccess view.
///
/// The attack model is a small MLP on [the view sorted in decreasing order,
/// the true-class score, its log, whether the label is the top class] (one
/// model for all classes, where Shokri trained one per class: it needs less
/// shadow data). Decision: member when P(member) >= 0.5.
///
///   auto r = shadow_membership(*victim, attacker_data, members, nonmembers,
///                              ShadowMembershipOptions().shadow_models(4));

#include "aegis/attacks/inference/membership.h"
#include "aegis/attacks/surrogate_model.h"
#include "aegis/core/classifier.h"

namespace aegis {

struct ShadowMembershipOptions {
  int64_t shadow_models_ = 4;  ///< >= 1
  SurrogateModelOptions shadow_;  ///< the shadows' architecture and recipe (ideally the victim's)
  OutputAccess access_;
  int64_t attack_epochs_ = 40;  ///< training of the attack model
  uint64_t seed_ = 0;
  ShadowMembershipOptions& shadow_models(int64_t v) { shadow_models_ = v; return *this; }
  ShadowMembershipOptions& shadow(SurrogateModelOptions v) { shadow_ = std::move(v); return *this; }
  ShadowMembershipOptions& access(OutputAccess v) { access_ = v; return *this; }
  ShadowMembershipOptions& attack_epochs(int64_t v) { attack_epochs_ = v; return *this; }
  ShadowMembershipOptions& seed(uint64_t v) { seed_ = v; return *this; }
  void validate() const;
};

/// The attack model's input features for a view [B, C] and labels.
torch::Tensor shadow_attack_features(const torch::Tensor& observed, const torch::Tensor& y);

/// `attacker_data`: records from the victim's distribution the attacker
/// holds, disjoint from the victim's training set (at least 20).
MembershipResult shadow_membership(Classifier& victim, const Dataset& attacker_data, const Dataset& members,
                                   const Dataset& nonmembers, const ShadowMembershipOptions& options = {});

}  // namespace aegis
