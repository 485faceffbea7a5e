#pragma once
/// Jacobian-based dataset augmentation (Papernot et al. 2017): extraction
/// for small budgets. Starting from a small seed set, the thief alternates
/// training the substitute on the victim's answers and growing the set with
/// x + lambda * sign(d substitute_logit[victim's label] / dx): new points
/// where the substitute's decision changes fastest, which are then asked of
/// the victim. lambda flips sign every `tau_` rounds (the paper's reservoir
/// trick to keep steps from running off). Black-box on the victim; the
/// Jacobian is the substitute's.
///
///   auto r = jacobian_extraction(*victim, seed_pool,
///   JacobianAugmentationOptions().budget(1500));

#include "aegis/attacks/extraction/extraction.h"
#include "aegis/attacks/surrogate_model.h"
#include "aegis/core/classifier.h"

namespace aegis {

struct JacobianAugmentationOptions {
  int64_t budget_ = 1600;                                         ///< total victim queries, >= seed_size
  int64_t seed_size_ = 100;                                       ///< initial samples drawn from the seed pool, >= 1
  double lambda_ = 0.1;                                           ///< augmentation step (raw input units), > 0
  int64_t tau_ = 3;                                               ///< rounds between sign flips of lambda, >= 1
  OutputAccess access_ = OutputAccess().mode(AnswerMode::Label);  ///< the paper's labels-only thief
  SurrogateModelOptions substitute_ = SurrogateModelOptions().train(TrainOptions().epochs(10).lr(2e-3));
  uint64_t seed_ = 0;
  JacobianAugmentationOptions& budget(int64_t v) { budget_ = v; return *this; }
  JacobianAugmentationOptions& seed_size(int64_t v) { seed_size_ = v; return *this; }
  JacobianAugmentationOptions& lambda(double v) { lambda_ = v; return *this; }
  JacobianAugmentationOptions& tau(int64_t v) { tau_ = v; return *this; }
  JacobianAugmentationOptions& access(OutputAccess v) { access_ = v; return *this; }
  JacobianAugmentationOptions& substitute(SurrogateModelOptions v) { substitute_ = std::move(v); return *this; }
  JacobianAugmentationOptions& seed(uint64_t v) { seed_ = v; return *this; }
  void validate() const;
};

ExtractionResult jacobian_extraction(Classifier& victim, const Dataset& seed_pool,
                                     const JacobianAugmentationOptions& options = {});

}  // namespace aegis
