// The table of audit checks. Adding a check: one file in src/audit/checks/
// defining make_<name>_check, its declaration below and one line in the table.

#include <algorithm>

#include "aegis/attacks/registry.h"
#include "aegis/audit/check.h"
#include "aegis/core/error.h"

namespace aegis {

std::unique_ptr<Check> make_evasion_curve_check(const nlohmann::json& params);
std::unique_ptr<Check> make_per_class_check(const nlohmann::json& params);
std::unique_ptr<Check> make_gradient_masking_check(const nlohmann::json& params);
std::unique_ptr<Check> make_minimal_perturbation_check(const nlohmann::json& params);
std::unique_ptr<Check> make_calibration_check(const nlohmann::json& params);
std::unique_ptr<Check> make_robust_accuracy_check(const nlohmann::json& params);
std::unique_ptr<Check> make_backdoor_scan_check(const nlohmann::json& params);
std::unique_ptr<Check> make_data_validation_check(const nlohmann::json& params);
std::unique_ptr<Check> make_poison_detection_check(const nlohmann::json& params);
std::unique_ptr<Check> make_membership_check(const nlohmann::json& params);
std::unique_ptr<Check> make_inversion_check(const nlohmann::json& params);
std::unique_ptr<Check> make_extraction_check(const nlohmann::json& params);
std::unique_ptr<Check> make_dp_audit_check(const nlohmann::json& params);
std::unique_ptr<Check> make_explanation_check(const nlohmann::json& params);
std::unique_ptr<Check> make_adversarial_detection_check(const nlohmann::json& params);

const std::vector<CheckInfo>& check_catalog() {
  static const std::vector<CheckInfo> table = {
      {"robust-accuracy",
       "Worst-case robust accuracy by the AutoAttack protocol (APGD-CE, APGD-T, Square) with its sanity checks",
       &make_robust_accuracy_check},
      {"evasion-curve",
       "Robust accuracy against eps (linf/l2, white-box or black-box attack "
       "from the registry)",
       &make_evasion_curve_check},
      {"adversarial-detection",
       "Adversarial-input detector (feature squeezing, Mahalanobis, LID or a saved one) against PGD and an adaptive "
       "attack that knows it: robust accuracy of model and detector together",
       &make_adversarial_detection_check},
      {"per-class-robustness", "Clean and robust accuracy of every class at one eps", &make_per_class_check},
      {"gradient-masking", "Sanity checks that expose robustness caused by masked gradients",
       &make_gradient_masking_check},
      {"minimal-perturbation",
       "Median distance to the nearest adversarial example (DeepFool/C&W, or a "
       "PGD eps grid)",
       &make_minimal_perturbation_check},
      {"calibration",
       "Expected calibration error and reliability on clean and adversarial "
       "data",
       &make_calibration_check},
      {"backdoor-scan", "Neural Cleanse trigger reverse-engineering: a class reached by an abnormally small trigger",
       &make_backdoor_scan_check},
      {"data-validation",
       "Training-set validation (with --training-data): invalid samples, conflicting duplicates, class-balance drift",
       &make_data_validation_check},
      {"poison-detection",
       "Poisoned training samples (with --training-data): spectral signatures / activation clustering",
       &make_poison_detection_check},
      {"membership-inference",
       "Loss-threshold membership inference: training records against the held-out audit sample (AUC, TPR at 1% "
       "FPR)",
       &make_membership_check},
      {"model-inversion", "MI-Face reconstructions of every class, compared with the class means",
       &make_inversion_check},
      {"model-extraction", "KnockoffNets copy from a small query budget: fidelity and transfer of attacks",
       &make_extraction_check},
      {"dp-audit",
       "One-run audit of a DP-SGD model's privacy claim (with --training-data): retrains with canaries, lower-bounds "
       "epsilon, compares a non-private twin",
       &make_dp_audit_check},
      {"explanation",
       "Trust in the explanations shown to people: model-randomisation sanity check and deletion AUC against random "
       "for the suite's methods, and how far a class-keeping perturbation moves the maps (Ghorbani et al.)",
       &make_explanation_check},
  };
  return table;
}

std::unique_ptr<Check> make_check(const std::string& name, const nlohmann::json& params) {
  AEGIS_CHECK(params.is_null() || params.is_object(), InvalidArgument,
              "parameters of check '" << name << "' must be a table");
  const nlohmann::json p = params.is_null() ? nlohmann::json::object() : params;
  for (const auto& c : check_catalog())
    if (c.name == name) return c.make(p);
  std::string names;
  for (const auto& c : check_catalog()) names += (names.empty() ? "" : ", ") + c.name;
  AEGIS_FAIL(InvalidArgument, "unknown check '" << name << "' (available: " << names << ")");
}

nlohmann::json CheckResult::to_json() const {
  nlohmann::json h = nlohmann::json::array(), o = nlohmann::json::array();
  for (const auto& x : headline)
    h.push_back({{"name", x.name}, {"value", x.value}, {"higher_is_better", x.higher_is_better}});
  for (const auto& x : observations)
    o.push_back({{"rule", x.rule}, {"value", x.value}, {"summary", x.summary}, {"evidence", x.evidence}});
  return {{"status", status},  {"note", note},           {"metrics", metrics}, {"headline", h},
          {"observations", o}, {"artefacts", artefacts}, {"seconds", seconds}};
}

CheckResult CheckResult::from_json(const nlohmann::json& j) {
  CheckResult r;
  try {
    r.status = j.at("status").get<std::string>();
    r.note = j.at("note").get<std::string>();
    r.metrics = j.at("metrics");
    for (const auto& x : j.at("headline"))
      r.headline.push_back(
          {x.at("name").get<std::string>(), x.at("value").get<double>(), x.at("higher_is_better").get<bool>()});
    for (const auto& x : j.at("observations"))
      r.observations.push_back({x.at("rule").get<std::string>(), x.at("value").get<double>(),
                                x.at("summary").get<std::string>(), x.at("evidence")});
    r.artefacts = j.at("artefacts");
    r.seconds = j.at("seconds").get<double>();
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "check result: " << e.what());
  }
  return r;
}

}  // namespace aegis
