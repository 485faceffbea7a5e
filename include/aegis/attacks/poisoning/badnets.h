#pragma once
/// BadNets (Gu et al. 2017): a backdoor planted through the training data. A
/// fraction of the training samples, drawn from classes other than the
/// target, get a trigger stamped on and their label set to the target class.
/// A model trained on the result behaves normally on clean inputs and
/// predicts the target whenever the trigger is present.
///
///   PoisonResult r = badnets(train,
///   BadNetsOptions(/*target=*/0).fraction(0.05)
///                                       .trigger(Trigger::patch(3,
///                                       "bottom-right")));
///
/// `fraction` is of the whole training set: round(fraction * N) samples are
/// poisoned (an error when the non-target classes hold fewer).

#include <cstdint>
#include <nlohmann/json.hpp>

#include "aegis/attacks/poisoning/poison.h"
#include "aegis/attacks/poisoning/trigger.h"

namespace aegis {

struct BadNetsOptions {
  explicit BadNetsOptions(int64_t target_class) : target_class_(target_class) {}
  int64_t target_class_;    ///< the class the backdoor predicts
  double fraction_ = 0.05;  ///< fraction of the training set poisoned, in (0, 1)
  Trigger trigger_ = Trigger::patch(3);
  uint64_t seed_ = 0;  ///< which samples are poisoned

  BadNetsOptions& target_class(int64_t v) { target_class_ = v; return *this; }
  BadNetsOptions& fraction(double v) { fraction_ = v; return *this; }
  BadNetsOptions& trigger(Trigger v) { trigger_ = std::move(v); return *this; }
  BadNetsOptions& seed(uint64_t v) { seed_ = v; return *this; }
  nlohmann::json to_json() const;
};

/// Needs image-shaped samples [N, C, H, W]. Throws InvalidArgument for a
/// target out of range, a fraction outside (0, 1) or a trigger that does not
/// fit.
PoisonResult badnets(const Dataset& data, const BadNetsOptions& options);

}  // namespace aegis
