#pragma once
/// Suite: the list of checks an audit runs, with their parameters and the
/// thresholds that grade their findings, read from TOML. Built-in suites for
/// the budgets quick, standard and thorough live in data/suites/.
///
///   Suite s = builtin_suite("quick");
///   Suite t = load_suite("my-suite.toml");   // rejects unknown
///   checks/parameters
///
/// Format (docs/audit.md):
///   [audit]
///   name = "quick"
///   samples = 200          # audit sample size (first samples of the shuffled
///   data) batch_size = 128
///
///   [[check]]
///   id = "evasion-linf"    # unique; defaults to the check name
///   check = "evasion-curve"
///   [check.params]
///   norm = "linf"
///   eps = [0.03, 0.1]
///   [check.thresholds.robust-accuracy-drop]
///   critical = 0.8
///   high = 0.5

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "aegis/audit/check.h"
#include "aegis/audit/finding.h"

namespace aegis {

struct CheckSpec {
  std::string id;     ///< unique in the suite; names the check's result file
  std::string check;  ///< registry name
  nlohmann::json params = nlohmann::json::object();
  /// Rule name -> overrides of its default thresholds (a table as in
  /// Thresholds::overlay).
  nlohmann::json thresholds = nlohmann::json::object();
  nlohmann::json to_json() const;
};

struct Suite {
  std::string name = "custom";
  int64_t samples = 200;
  int64_t batch_size = 128;
  std::vector<CheckSpec> checks;
  nlohmann::json to_json() const;
};

/// Parses TOML text. Throws InvalidArgument (with `origin` and the line) for
/// TOML syntax errors, unknown keys, unknown checks, unknown check
/// parameters, threshold overrides for rules a check does not declare, and
/// duplicate ids.
Suite parse_suite(const std::string& toml_text, const std::string& origin = "suite");
Suite load_suite(const std::string& path);
/// "quick", "standard", "thorough" or "privacy", from data_dir()/suites/<budget>.toml.
Suite builtin_suite(const std::string& budget);

/// The thresholds a suite entry grades `rule` with: the check's defaults
/// overlaid with the suite's overrides.
Thresholds effective_thresholds(const CheckSpec& spec, const struct FindingRule& rule);

}  // namespace aegis
