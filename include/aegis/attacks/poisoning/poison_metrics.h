#pragma once
/// The damage a poisoning attack did, measured on clean test data after a
/// model was trained on the poisoned set: clean accuracy, the backdoor's
/// attack success rate (test samples of other classes with the trigger on,
/// classified as the target), and for targeted label flips the fraction of the
/// source class now predicted as the target.
///
///   PoisonMetrics m = measure_poisoning(*model, test,
///   PoisonMetricsOptions().trigger(t, 0)); m.clean_accuracy;
///   m.attack_success_rate;

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "aegis/attacks/poisoning/trigger.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct PoisonMetricsOptions {
  std::optional<Trigger> trigger_;       ///< backdoor: measure ASR with this trigger
  std::optional<int64_t> target_class_;  ///< backdoor target, or targeted flip's B
  std::optional<int64_t> source_class_;  ///< targeted flip's A
  int64_t batch_size_ = 512;

  PoisonMetricsOptions& trigger(Trigger t, int64_t target) { trigger_ = std::move(t); target_class_ = target; return *this; }
  PoisonMetricsOptions& flip(int64_t source, int64_t target) { source_class_ = source; target_class_ = target; return *this; }
  PoisonMetricsOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
};

struct PoisonMetrics {
  int64_t samples = 0;
  double clean_accuracy = 0;
  /// Backdoor: triggered non-target test samples predicted as the target (-1
  /// when not measured).
  double attack_success_rate = -1;
  int64_t triggered_samples = 0;
  /// Targeted flip: source-class test samples predicted as the target (-1 when
  /// not measured).
  double source_to_target_rate = -1;
  int64_t source_samples = 0;
  nlohmann::json to_json() const;
};

/// Throws ShapeMismatch when data and model disagree, InvalidArgument for
/// classes out of range.
PoisonMetrics measure_poisoning(Classifier& model, const Dataset& test, const PoisonMetricsOptions& options);

}  // namespace aegis
