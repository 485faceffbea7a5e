#pragma once
/// LiRA, the likelihood-ratio membership attack (Carlini et al. 2022), in
/// its offline form: the attacker trains N shadow models on random halves of
/// its own data (none contains the candidates), records each candidate's
/// logit-scaled confidence phi = log p_y - log sum_{j!=y} p_j on every shadow,
/// fits a Gaussian N(mu_out, sigma_out^2) per candidate, and scores the
/// victim's phi by how far it lies above what models that never saw the
/// record produce: (phi - mu_out) / sigma_out (the one-sided test of the
/// offline attack, monotone in its likelihood ratio). With few shadows, a
/// global variance (`fixed_variance_`, the default) is steadier, as the paper
/// recommends. Black-box: one query per candidate on the victim.
///
///   auto r = lira_membership(*victim, attacker_data, members, nonmembers,
///                            LiraOptions().shadow_models(8));

#include "aegis/attacks/inference/membership.h"
#include "aegis/attacks/surrogate_model.h"
#include "aegis/core/classifier.h"

namespace aegis {

struct LiraOptions {
  int64_t shadow_models_ = 8;     ///< >= 2
  SurrogateModelOptions shadow_;  ///< the shadows' architecture and recipe (ideally the victim's)
  OutputAccess access_;           ///< needs scores (not label-only)
  double shadow_fraction_ = 0.5;  ///< share of the attacker's data each shadow trains on, in (0, 1]
  /// Records each shadow trains on; 0 (default) = shadow_fraction_ of the attacker's data. Best set to
  /// the victim's training-set size: a shadow then overfits as much as the victim did.
  int64_t shadow_train_records_ = 0;
  bool fixed_variance_ = true;    ///< one sigma for all candidates (better with few shadows)
  uint64_t seed_ = 0;
  LiraOptions& shadow_models(int64_t v) { shadow_models_ = v; return *this; }
  LiraOptions& shadow(SurrogateModelOptions v) { shadow_ = std::move(v); return *this; }
  LiraOptions& access(OutputAccess v) { access_ = v; return *this; }
  LiraOptions& shadow_fraction(double v) { shadow_fraction_ = v; return *this; }
  LiraOptions& shadow_train_records(int64_t v) { shadow_train_records_ = v; return *this; }
  LiraOptions& fixed_variance(bool v) { fixed_variance_ = v; return *this; }
  LiraOptions& seed(uint64_t v) { seed_ = v; return *this; }
  void validate() const;
};

/// `attacker_data`: records from the victim's distribution the attacker
/// holds, disjoint from the candidates (at least 10).
MembershipResult lira_membership(Classifier& victim, const Dataset& attacker_data, const Dataset& members,
                                 const Dataset& nonmembers, const LiraOptions& options = {});

}  // namespace aegis
