#include "aegis/audit/diff.h"

#include <cmath>
#include <map>

#include "aegis/audit/finding.h"
#include "aegis/core/error.h"

namespace aegis {

namespace {

using nlohmann::json;

struct Metric {
  double value;
  bool higher_is_better;
};

std::map<std::pair<std::string, std::string>, Metric> metrics_of(const json& r) {
  std::map<std::pair<std::string, std::string>, Metric> m;
  for (const auto& c : r.at("checks"))
    for (const auto& h : c.at("headline"))
      m[{c.at("id").get<std::string>(), h.at("name").get<std::string>()}] = {h.at("value").get<double>(),
                                                                             h.at("higher_is_better").get<bool>()};
  return m;
}

json side(const json& r) {
  return {{"model_sha256", r.at("model").at("sha256")},
          {"model_path", r.at("model").at("path")},
          {"data_fingerprint", r.at("data").at("fingerprint")},
          {"suite", r.at("suite").at("name")},
          {"seed", r.at("seed")},
          {"worst_severity", r.at("verdict").at("worst_severity")}};
}

}  // namespace

json diff_reports(const json& before, const json& after) {
  try {
    auto mb = metrics_of(before), ma = metrics_of(after);
    json metrics = json::array();
    int improved = 0, regressed = 0;
    for (const auto& [key, b] : mb) {
      auto it = ma.find(key);
      if (it == ma.end()) {
        metrics.push_back({{"check", key.first},
                           {"name", key.second},
                           {"before", b.value},
                           {"after", nullptr},
                           {"delta", nullptr},
                           {"higher_is_better", b.higher_is_better},
                           {"change", "removed"}});
        continue;
      }
      double d = it->second.value - b.value;
      std::string change = "unchanged";
      if (std::abs(d) > 1e-9) change = (d > 0) == b.higher_is_better ? "improved" : "regressed";
      improved += change == "improved";
      regressed += change == "regressed";
      metrics.push_back({{"check", key.first},
                         {"name", key.second},
                         {"before", b.value},
                         {"after", it->second.value},
                         {"delta", d},
                         {"higher_is_better", b.higher_is_better},
                         {"change", change}});
    }
    for (const auto& [key, a] : ma)
      if (!mb.count(key))
        metrics.push_back({{"check", key.first},
                           {"name", key.second},
                           {"before", nullptr},
                           {"after", a.value},
                           {"delta", nullptr},
                           {"higher_is_better", a.higher_is_better},
                           {"change", "added"}});

    std::map<std::string, std::string> fb, fa;
    for (const auto& f : before.at("findings")) fb[f.at("id").get<std::string>()] = f.at("severity").get<std::string>();
    for (const auto& f : after.at("findings")) fa[f.at("id").get<std::string>()] = f.at("severity").get<std::string>();
    json findings = json::array();
    int f_improved = 0, f_regressed = 0;
    for (const auto& [id, sb] : fb) {
      auto it = fa.find(id);
      if (it == fa.end()) {
        findings.push_back({{"id", id}, {"before", sb}, {"after", nullptr}, {"change", "removed"}});
        continue;
      }
      Severity b = parse_severity(sb), a = parse_severity(it->second);
      std::string change = a < b ? "improved" : a > b ? "regressed" : "unchanged";
      f_improved += change == "improved";
      f_regressed += change == "regressed";
      findings.push_back({{"id", id}, {"before", sb}, {"after", it->second}, {"change", change}});
    }
    for (const auto& [id, sa] : fa)
      if (!fb.count(id)) findings.push_back({{"id", id}, {"before", nullptr}, {"after", sa}, {"change", "added"}});

    json warnings = json::array();
    if (before.at("data").at("fingerprint") != after.at("data").at("fingerprint"))
      warnings.push_back(
          "the two audits ran on different data: metrics are "
          "not directly comparable");
    if (before.at("suite") != after.at("suite"))
      warnings.push_back(
          "the two audits ran different suites: only metrics "
          "present in both are compared");
    return {{"before", side(before)},
            {"after", side(after)},
            {"metrics", metrics},
            {"findings", findings},
            {"improved", improved},
            {"regressed", regressed},
            {"findings_improved", f_improved},
            {"findings_regressed", f_regressed},
            {"warnings", warnings}};
  } catch (const json::exception& e) {
    AEGIS_FAIL(CorruptData, "audit diff: a report lacks a field: " << e.what());
  }
}

}  // namespace aegis
