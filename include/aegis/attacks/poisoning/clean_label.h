#pragma once
/// Clean-label backdoor (Turner, Tsipras and Madry 2019): every poisoned
/// sample keeps its correct label, so inspecting labels finds nothing. Samples
/// of the target class are first made hard to classify by an adversarial
/// perturbation (PGD against a surrogate model the attacker trained), then the
/// trigger is stamped on. A model trained on them cannot rely on the natural
/// features of those samples and learns the trigger instead.
///
///   auto surrogate = ScriptClassifier::load("surrogate.pt");
///   PoisonResult r = clean_label(train, *surrogate,
///   CleanLabelOptions(0).fraction(0.5).eps(0.3));
///
/// `fraction` is of the target class: round(fraction * count(target)) samples.

#include <cstdint>
#include <nlohmann/json.hpp>

#include "aegis/attacks/poisoning/poison.h"
#include "aegis/attacks/poisoning/trigger.h"
#include "aegis/core/classifier.h"

namespace aegis {

struct CleanLabelOptions {
  explicit CleanLabelOptions(int64_t target_class) : target_class_(target_class) {}
  int64_t target_class_;       ///< the class whose samples are poisoned (and the
                               ///< backdoor's target)
  double fraction_ = 0.5;      ///< fraction of the target class poisoned, in (0, 1]
  double eps_ = 16.0 / 255.0;  ///< L-inf budget of the adversarial perturbation,
                               ///< >= 0 (0 = trigger only)
  int64_t steps_ = 10;         ///< PGD steps, >= 1 when eps > 0
  double step_size_ = 0;       ///< 0 = 2.5 * eps / steps
  Trigger trigger_ = Trigger::patch(3);
  uint64_t seed_ = 0;  ///< sample choice and PGD's random start
  int64_t batch_size_ = 256;

  CleanLabelOptions& target_class(int64_t v) { target_class_ = v; return *this; }
  CleanLabelOptions& fraction(double v) { fraction_ = v; return *this; }
  CleanLabelOptions& eps(double v) { eps_ = v; return *this; }
  CleanLabelOptions& steps(int64_t v) { steps_ = v; return *this; }
  CleanLabelOptions& step_size(double v) { step_size_ = v; return *this; }
  CleanLabelOptions& trigger(Trigger v) { trigger_ = std::move(v); return *this; }
  CleanLabelOptions& seed(uint64_t v) { seed_ = v; return *this; }
  CleanLabelOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  nlohmann::json to_json() const;
};

/// `surrogate` must be white-box and accept the data's shape. Labels of the
/// result equal the input's; only target-class samples change.
PoisonResult clean_label(const Dataset& data, Classifier& surrogate, const CleanLabelOptions& options);

}  // namespace aegis
