#pragma once
/// Check: one audit test of a model. A check takes the model, the audit data
/// and its parameters, and returns metrics (numbers for machines), headline
/// metrics (what `aegis audit diff` compares), observations (values of the
/// finding rules it declares, graded into findings by the audit with the
/// suite's thresholds) and artefacts (charts and example images for the
/// report).
///
/// Checks are built by name from a parameter table, as the suite file gives
/// them; unknown names and unknown parameters are rejected:
///
///   auto check = make_check("evasion-curve", {{"norm", "linf"}, {"eps", {0.05,
///   0.1}}}); CheckContext ctx{*model, data, torch::arange(data.size()),
///   /*seed=*/0, /*batch_size=*/128, "evasion-linf"}; CheckResult r =
///   check->run(ctx);
///
/// Adding a check is one source file in src/audit/checks/ (a class deriving
/// from Check and a `make_<name>_check(const nlohmann::json&)` factory) and
/// one line in the table of src/audit/check_registry.cpp.

#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/audit/finding.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

/// A rule a check declares: what it grades, against which default limits,
/// which threat it is, and the aegis command that mitigates it.
struct FindingRule {
  std::string name;        ///< unique within the check, e.g. "robust-accuracy-drop"
  std::string title;       ///< one line for people
  std::string metric;      ///< the graded metric and its unit, in words
  Thresholds thresholds;   ///< defaults; a suite may override them
  std::string atlas;       ///< MITRE ATLAS technique id
  std::string owasp;       ///< OWASP ML Top 10 id
  std::string mitigation;  ///< aegis command line
};

/// One measured value of a rule, with its evidence.
struct Observation {
  std::string rule;
  double value = 0;
  std::string summary;  ///< what was measured, in words
  nlohmann::json evidence = nlohmann::json::object();
};

/// A metric `aegis audit diff` compares between two reports.
struct Headline {
  std::string name;  ///< e.g. "robust_accuracy@eps=0.1"
  double value = 0;
  bool higher_is_better = true;
};

struct CheckResult {
  std::string status = "ok";  ///< "ok", or "skipped" (with `note` saying why)
  std::string note;
  nlohmann::json metrics = nlohmann::json::object();
  std::vector<Headline> headline;
  std::vector<Observation> observations;
  /// Material for the report: {"curves": [...], "bars": [...], "examples":
  /// [...]}.
  nlohmann::json artefacts = nlohmann::json::object();
  double seconds = 0;

  nlohmann::json to_json() const;
  static CheckResult from_json(const nlohmann::json& j);
};

/// What a check runs on. The data is the audit's sample (already the size
/// the suite asked for); `seed` is derived for this check alone, so checks
/// never shift each other's random choices.
struct CheckContext {
  Classifier& model;
  const Dataset& data;
  torch::Tensor indices;  ///< [N] int64: each sample's position in the dataset
                          ///< the audit was given
  uint64_t seed = 0;
  int64_t batch_size = 128;
  std::string label;  ///< the check's id, for progress bars
  /// The training set of the model when the audit was given one (`aegis audit
  /// --training-data`), else null. The training-data checks (validation,
  /// poison detection) skip without it.
  const Dataset* training = nullptr;
};

class Check {
 public:
  virtual ~Check() = default;
  /// Registry name.
  virtual std::string name() const = 0;
  /// The finding rules this check may report on (every observation names one).
  virtual std::vector<FindingRule> rules() const = 0;
  /// Its parameters after defaults, as the suite would write them.
  virtual nlohmann::json options_json() const = 0;
  virtual CheckResult run(CheckContext& ctx) = 0;
};

struct CheckInfo {
  std::string name;
  std::string summary;
  std::function<std::unique_ptr<Check>(const nlohmann::json&)> make;
};

/// Every registered check, in a stable order.
const std::vector<CheckInfo>& check_catalog();
/// Builds a check by name. Unknown names and parameters throw InvalidArgument
/// naming them and listing the valid ones.
std::unique_ptr<Check> make_check(const std::string& name, const nlohmann::json& params = nlohmann::json::object());

}  // namespace aegis
