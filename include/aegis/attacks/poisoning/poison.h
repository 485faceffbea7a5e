#pragma once
/// What every poisoning attack returns: the poisoned training set and an
/// exact record of what was planted (which samples, their original labels,
/// the trigger), so a pipeline's defences can be scored against the truth.
///
///   PoisonResult r = badnets(train, BadNetsOptions(0).fraction(0.05));
///   r.save("out/");            // out/x.npy, out/y.npy, out/poison.json
///   r.poisoned.size(); r.indices; r.to_json();

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "aegis/attacks/poisoning/trigger.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct PoisonResult {
  std::string attack;                                    ///< "label-flip", "badnets", "clean-label"
  Dataset poisoned;                                      ///< the training set with the poison in place (same size
                                                         ///< and order as the input)
  std::vector<int64_t> indices;                          ///< positions of the poisoned samples, ascending
  std::vector<int64_t> original_labels;                  ///< label before poisoning, one per index
  std::vector<int64_t> new_labels;                       ///< label after poisoning, one per index
  std::optional<Trigger> trigger;                        ///< the backdoor trigger, for backdoor attacks
  std::optional<int64_t> target_class;                   ///< the class a backdoor or targeted flip aims at
  nlohmann::json parameters = nlohmann::json::object();  ///< the options used
  std::string clean_fingerprint;                         ///< Dataset::fingerprint() before poisoning
  std::string poisoned_fingerprint;                      ///< and after

  /// The record: attack, parameters, trigger, counts, fingerprints and per
  /// sample index / original label / new label.
  nlohmann::json to_json() const;
  /// Writes `dir`/x.npy (float32), `dir`/y.npy (int64) and `dir`/poison.json.
  void save(const std::string& dir) const;
};

/// Reads the trigger and target class back from a poison.json record.
/// Throws CorruptData when the record has no trigger.
std::pair<Trigger, int64_t> trigger_from_record(const nlohmann::json& record);

}  // namespace aegis
