#include "aegis/audit/finding.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

namespace {

const char* const kNames[] = {"info", "low", "medium", "high", "critical"};

nlohmann::json opt(const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); }

std::optional<double> opt_from(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<double>();
}

}  // namespace

Severity parse_severity(const std::string& s) {
  std::string l = s;
  std::transform(l.begin(), l.end(), l.begin(), [](unsigned char c) { return std::tolower(c); });
  for (int i = 0; i < 5; ++i)
    if (l == kNames[i]) return Severity(i);
  AEGIS_FAIL(InvalidArgument, "unknown severity '" << s << "' (valid: critical, high, medium, low, info)");
}

std::string severity_name(Severity s) { return kNames[int(s)]; }

Severity Thresholds::grade(double value) const {
  AEGIS_CHECK(std::isfinite(value), InvalidArgument, "cannot grade a non-finite value");
  auto reached = [&](const std::optional<double>& limit) {
    return limit && (higher_is_worse_ ? value >= *limit : value <= *limit);
  };
  if (reached(critical_)) return Severity::Critical;
  if (reached(high_)) return Severity::High;
  if (reached(medium_)) return Severity::Medium;
  if (reached(low_)) return Severity::Low;
  return Severity::Info;
}

nlohmann::json Thresholds::to_json() const {
  return {{"higher_is_worse", higher_is_worse_},
          {"critical", opt(critical_)},
          {"high", opt(high_)},
          {"medium", opt(medium_)},
          {"low", opt(low_)}};
}

Thresholds Thresholds::overlay(const nlohmann::json& table, const std::string& context) const {
  AEGIS_CHECK(table.is_object(), InvalidArgument, context << ": thresholds must be a table");
  Thresholds t = *this;
  for (const auto& [key, v] : table.items()) {
    if (key == "higher_is_worse") {
      AEGIS_CHECK(v.is_boolean(), InvalidArgument, context << ": 'higher_is_worse' must be true or false");
      t.higher_is_worse_ = v.get<bool>();
      continue;
    }
    std::optional<double>* slot = key == "critical" ? &t.critical_
                                  : key == "high"   ? &t.high_
                                  : key == "medium" ? &t.medium_
                                  : key == "low"    ? &t.low_
                                                    : nullptr;
    AEGIS_CHECK(slot, InvalidArgument,
                context << ": unknown threshold '" << key << "' (valid: critical, high, medium, low, higher_is_worse)");
    AEGIS_CHECK(v.is_number() && std::isfinite(v.get<double>()), InvalidArgument,
                context << ": threshold '" << key << "' must be a finite number, got " << v.dump());
    *slot = v.get<double>();
  }
  // Limits must be ordered from most to least severe along the metric's
  // direction.
  std::optional<double> prev;
  const char* prev_name = "";
  const std::pair<const char*, std::optional<double>> levels[] = {
      {"critical", t.critical_}, {"high", t.high_}, {"medium", t.medium_}, {"low", t.low_}};
  for (const auto& [name, limit] : levels) {
    if (!limit) continue;
    if (prev) {
      bool ok = t.higher_is_worse_ ? *limit <= *prev : *limit >= *prev;
      AEGIS_CHECK(ok, InvalidArgument,
                  context << ": threshold '" << name << "' (" << *limit << ") is more severe than '" << prev_name
                          << "' (" << *prev << ")"
                          << (t.higher_is_worse_ ? " (higher is worse)" : " (lower is worse)"));
    }
    prev = limit;
    prev_name = name;
  }
  return t;
}

nlohmann::json Finding::to_json() const {
  return {{"id", id},
          {"check", check},
          {"rule", rule},
          {"title", title},
          {"severity", severity_name(severity)},
          {"summary", summary},
          {"metric", metric},
          {"value", value},
          {"thresholds", thresholds.to_json()},
          {"evidence", evidence},
          {"atlas", atlas},
          {"owasp", owasp},
          {"mitigation", mitigation}};
}

Finding Finding::from_json(const nlohmann::json& j) {
  Finding f;
  try {
    f.id = j.at("id").get<std::string>();
    f.check = j.at("check").get<std::string>();
    f.rule = j.at("rule").get<std::string>();
    f.title = j.at("title").get<std::string>();
    f.severity = parse_severity(j.at("severity").get<std::string>());
    f.summary = j.at("summary").get<std::string>();
    f.metric = j.at("metric").get<std::string>();
    f.value = j.at("value").get<double>();
    const auto& t = j.at("thresholds");
    f.thresholds.higher_is_worse_ = t.at("higher_is_worse").get<bool>();
    f.thresholds.critical_ = opt_from(t, "critical");
    f.thresholds.high_ = opt_from(t, "high");
    f.thresholds.medium_ = opt_from(t, "medium");
    f.thresholds.low_ = opt_from(t, "low");
    f.evidence = j.at("evidence");
    f.atlas = j.at("atlas").get<std::string>();
    f.owasp = j.at("owasp").get<std::string>();
    f.mitigation = j.at("mitigation").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, "finding: " << e.what());
  }
  return f;
}

}  // namespace aegis
