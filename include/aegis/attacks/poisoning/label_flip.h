#pragma once
/// Label flipping: the simplest poisoning attack. A fraction of the training
/// labels is changed, either at random (each chosen sample gets a uniformly
/// random other class) or targeted (samples of class A relabelled as B).
///
///   PoisonResult r = label_flip(train, LabelFlipOptions(0.1).seed(3)); //
///   random, 10% PoisonResult t = label_flip(train,
///   LabelFlipOptions(0.3).source(2).target(4));  // 30% of class 2 -> 4
///
/// Bookkeeping is exact: round(rate * eligible) samples are flipped, where
/// eligible is the whole set (random) or the source class (targeted); only
/// eligible samples change, and the choice is fixed by the seed.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "aegis/attacks/poisoning/poison.h"

namespace aegis {

struct LabelFlipOptions {
  explicit LabelFlipOptions(double rate) : rate_(rate) {}
  double rate_;                    ///< fraction of eligible samples flipped, in [0, 1]
  std::optional<int64_t> source_;  ///< targeted: only this class is flipped (needs target_)
  std::optional<int64_t> target_;  ///< targeted: the new label
  uint64_t seed_ = 0;

  LabelFlipOptions& rate(double v) { rate_ = v; return *this; }
  LabelFlipOptions& source(int64_t v) { source_ = v; return *this; }
  LabelFlipOptions& target(int64_t v) { target_ = v; return *this; }
  LabelFlipOptions& seed(uint64_t v) { seed_ = v; return *this; }
  nlohmann::json to_json() const;
};

/// Throws InvalidArgument for a rate outside [0, 1], a source without a
/// target (or the reverse), classes out of range, or source == target.
PoisonResult label_flip(const Dataset& data, const LabelFlipOptions& options);

}  // namespace aegis
