#pragma once
/// KnockoffNets / Copycat extraction (Orekondy et al. 2019; Correia-Silva et
/// al. 2018): the thief draws `budget` inputs from a surrogate query set (a
/// held-out split of the task's data, natural data from elsewhere, or random
/// noise), asks the victim, and trains a substitute on the answers (soft
/// targets when the answers carry scores, the label otherwise). Black-box:
/// probabilities() only, seen through the OutputAccess view.
///
///   auto r = knockoff_extraction(*victim, pool,
///                                KnockoffOptions().budget(10000).access(OutputAccess().mode(AnswerMode::Label)));

#include "aegis/attacks/extraction/extraction.h"
#include "aegis/attacks/surrogate_model.h"
#include "aegis/core/classifier.h"

namespace aegis {

struct KnockoffOptions {
  int64_t budget_ = 10000;  ///< queries, >= 1 (at most the pool's size: queries are distinct)
  OutputAccess access_;
  SurrogateModelOptions substitute_ = SurrogateModelOptions().train(TrainOptions().epochs(15).lr(2e-3));
  uint64_t seed_ = 0;
  KnockoffOptions& budget(int64_t v) { budget_ = v; return *this; }
  KnockoffOptions& access(OutputAccess v) { access_ = v; return *this; }
  KnockoffOptions& substitute(SurrogateModelOptions v) { substitute_ = std::move(v); return *this; }
  KnockoffOptions& seed(uint64_t v) { seed_ = v; return *this; }
  void validate() const;
};

/// `pool`: the surrogate query set (its labels, if any, are ignored).
ExtractionResult knockoff_extraction(Classifier& victim, const Dataset& pool, const KnockoffOptions& options = {});

}  // namespace aegis
