#pragma once
/// Findings of an audit: what a check found, how bad it is, which published
/// threat it corresponds to and the aegis command that mitigates it.
///
/// The severity is never decided inside a check: a check reports an observed
/// value for one of its declared rules, and Thresholds (declared by the check
/// as defaults, overridable in the suite) grade that value.
///
///   Thresholds t =
///   Thresholds().higher_is_worse(true).critical(0.9).high(0.5).medium(0.2).low(0.05);
///   t.grade(0.6);   // Severity::High

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace aegis {

/// Ordered: a greater value is more severe.
enum class Severity { Info = 0, Low = 1, Medium = 2, High = 3, Critical = 4 };
/// "critical", "high", "medium", "low", "info" (case-insensitive); throws
/// InvalidArgument.
Severity parse_severity(const std::string& s);
std::string severity_name(Severity s);

/// Declared limits that turn a measured value into a severity. A level
/// applies when the value reaches its limit (>= when higher is worse, <=
/// otherwise); the most severe applying level wins, Info when none applies.
struct Thresholds {
  bool higher_is_worse_ = true;  ///< direction of the metric
  std::optional<double> critical_, high_, medium_, low_;

  Thresholds& higher_is_worse(bool v) {
    higher_is_worse_ = v;
    return *this;
  }
  Thresholds& critical(double v) {
    critical_ = v;
    return *this;
  }
  Thresholds& high(double v) {
    high_ = v;
    return *this;
  }
  Thresholds& medium(double v) {
    medium_ = v;
    return *this;
  }
  Thresholds& low(double v) {
    low_ = v;
    return *this;
  }

  Severity grade(double value) const;
  nlohmann::json to_json() const;
  /// Overlays the keys of a table ({critical, high, medium, low,
  /// higher_is_worse}) on *this. Unknown keys, non-numbers and limits out of
  /// order (e.g. critical less severe than high) throw InvalidArgument.
  Thresholds overlay(const nlohmann::json& table, const std::string& context) const;
};

struct Finding {
  std::string id;     ///< "<check id>/<rule>", unique within a report
  std::string check;  ///< the check id in the suite
  std::string rule;   ///< the check's rule name
  std::string title;  ///< one line for people
  Severity severity = Severity::Info;
  std::string summary;                                 ///< what was measured, in words
  std::string metric;                                  ///< name of the graded metric
  double value = 0;                                    ///< its measured value
  Thresholds thresholds;                               ///< the limits it was graded against
  nlohmann::json evidence = nlohmann::json::object();  ///< metric values, sample ids, images
  std::string atlas;                                   ///< MITRE ATLAS technique id (e.g. AML.T0043)
  std::string owasp;                                   ///< OWASP ML Top 10 id (e.g. ML01)
  std::string mitigation;                              ///< the aegis command that applies the recommended mitigation

  nlohmann::json to_json() const;
  static Finding from_json(const nlohmann::json& j);
};

}  // namespace aegis
