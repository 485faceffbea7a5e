#pragma once
/// Audit: the penetration test of a model. Runs every check of a suite on a
/// sample of the data, grades the observations into findings with the
/// suite's thresholds, and writes report.json (for machines; schema
/// docs/audit-report.schema.json) and report.html (for people). Each
/// finished check is saved as <out>/checks/<id>.json as soon as it ends, so
/// an interrupted audit resumes where it stopped.
///
///   AuditReport r = run_audit(*model, test, builtin_suite("quick"),
///                             AuditOptions("audit/").model_path("m.pt").seed(0).resume(true));
///   r.worst;   // most severe finding
///
/// The report is deterministic for a fixed seed, suite, model and data,
/// apart from the fields documented as timings ("seconds", "run").

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "aegis/audit/finding.h"
#include "aegis/audit/suite.h"
#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

/// Version of report.json's schema; bumped on any incompatible change.
inline constexpr int kAuditReportSchemaVersion = 1;

struct AuditOptions {
  explicit AuditOptions(std::string out_dir) : out_dir_(std::move(out_dir)) {}
  std::string out_dir_;      ///< where report.json, report.html and checks/ go
  uint64_t seed_ = 0;        ///< every random choice of every check derives from it
  bool resume_ = false;      ///< reuse finished checks whose configuration matches
  std::string model_path_;   ///< the model file, hashed into the report (SHA-256)
  std::string data_source_;  ///< how the data was named (e.g. "fashion-mnist:test")
  int64_t samples_ = 0;      ///< overrides the suite's sample size when > 0
  std::string reproduce_;    ///< the command line that reproduces this audit
  bool write_html_ = true;
  const Dataset* training_data_ = nullptr;  ///< the model's training set, for the data checks (not owned)
  std::string training_source_;             ///< how the training set was named
  /// Called after each check's result is saved (tests use it to interrupt an
  /// audit).
  std::function<void(const std::string& check_id)> after_check_;

  AuditOptions& seed(uint64_t v) {
    seed_ = v;
    return *this;
  }
  AuditOptions& resume(bool v) {
    resume_ = v;
    return *this;
  }
  AuditOptions& model_path(std::string v) {
    model_path_ = std::move(v);
    return *this;
  }
  AuditOptions& data_source(std::string v) {
    data_source_ = std::move(v);
    return *this;
  }
  AuditOptions& samples(int64_t v) {
    samples_ = v;
    return *this;
  }
  AuditOptions& reproduce(std::string v) {
    reproduce_ = std::move(v);
    return *this;
  }
  /// The model's training set (kept by the caller for the audit's duration):
  /// enables the data-validation and poison-detection checks.
  AuditOptions& training_data(const Dataset* v, std::string source = {}) {
    training_data_ = v;
    training_source_ = std::move(source);
    return *this;
  }
  AuditOptions& write_html(bool v) {
    write_html_ = v;
    return *this;
  }
  AuditOptions& after_check(std::function<void(const std::string&)> v) {
    after_check_ = std::move(v);
    return *this;
  }
};

struct AuditReport {
  nlohmann::json report;             ///< exactly what report.json holds
  Severity worst = Severity::Info;   ///< most severe finding (Info when none)
  std::string json_path, html_path;  ///< files written
  int64_t resumed_checks = 0;        ///< checks reused from an earlier run
};

AuditReport run_audit(Classifier& model, const Dataset& data, const Suite& suite, const AuditOptions& options);

/// The report with every timing field removed ("seconds" anywhere, "run"):
/// two audits with the same seed, suite, model and data give equal values.
nlohmann::json strip_timings(const nlohmann::json& report);

/// Loads a report.json and checks its schema version. Throws NotFound /
/// CorruptData.
nlohmann::json load_audit_report(const std::string& path);

/// Path of the JSON Schema of report.json
/// (data_dir()/schema/audit-report.schema.json).
std::string audit_report_schema_path();

}  // namespace aegis
