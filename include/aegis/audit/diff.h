#pragma once
/// Compares two audit reports of a model (typically before and after
/// hardening): every headline metric with its change and whether it
/// improved, and every finding whose severity changed, appeared or went away.
///
///   nlohmann::json d = diff_reports(load_audit_report("before/report.json"),
///                                   load_audit_report("after/report.json"));
///   d["improved"]; d["regressed"];

#include <nlohmann/json.hpp>

namespace aegis {

/// {"before": {...}, "after": {...}, "metrics": [{check, name, before, after,
/// delta, higher_is_better, change:
/// improved|regressed|unchanged|added|removed}], "findings": [{id, before,
/// after, change}], "improved": n, "regressed": n}. Metrics are compared with a
/// tolerance of 1e-9.
nlohmann::json diff_reports(const nlohmann::json& before, const nlohmann::json& after);

}  // namespace aegis
