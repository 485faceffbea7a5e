#pragma once
/// Label-only membership inference (Choquette-Choo et al. 2021, the
/// noise-robustness variant): for a model behind a gateway that answers
/// labels only, a training record tends to stay correctly classified under
/// small random perturbations, an unseen one flips sooner. Score: the
/// fraction of the candidate and `perturbations_` Gaussian-noised copies
/// (clipped to the valid range) that the victim labels correctly. Costs
/// (1 + perturbations) queries per candidate; uses predict() only.
///
///   auto r = label_only_membership(*model, members, nonmembers, LabelOnlyMembershipOptions().noise_std(0.1));

#include "aegis/attacks/inference/membership.h"
#include "aegis/core/classifier.h"

namespace aegis {

struct LabelOnlyMembershipOptions {
  int64_t perturbations_ = 16;  ///< noisy copies per candidate, >= 1
  double noise_std_ = 0.1;      ///< Gaussian noise, in units of the valid range's width, > 0
  /// Decision: member when at least this fraction of answers is correct, in [0, 1].
  double threshold_ = 1.0;
  int64_t batch_size_ = 512;
  uint64_t seed_ = 0;
  LabelOnlyMembershipOptions& perturbations(int64_t v) { perturbations_ = v; return *this; }
  LabelOnlyMembershipOptions& noise_std(double v) { noise_std_ = v; return *this; }
  LabelOnlyMembershipOptions& threshold(double v) { threshold_ = v; return *this; }
  LabelOnlyMembershipOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  LabelOnlyMembershipOptions& seed(uint64_t v) { seed_ = v; return *this; }
  void validate() const;
};

MembershipResult label_only_membership(Classifier& model, const Dataset& members, const Dataset& nonmembers,
                                       const LabelOnlyMembershipOptions& options = {});

}  // namespace aegis
