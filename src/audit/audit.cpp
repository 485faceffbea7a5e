#include "aegis/audit/audit.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <set>

#include "aegis/audit/catalog.h"
#include "aegis/audit/check.h"
#include "aegis/audit/report_html.h"
#include "aegis/core/accuracy.h"
#include "aegis/core/error.h"
#include "aegis/core/progress.h"
#include "aegis/core/random.h"
#include "aegis/core/sha256.h"

namespace aegis {

namespace fs = std::filesystem;

namespace {

void write_atomically(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    AEGIS_CHECK(out, Io, "cannot write " << tmp.string());
    out << text;
    out.flush();
    AEGIS_CHECK(out, Io, "cannot write " << tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  AEGIS_CHECK(!ec, Io, "cannot rename " << tmp.string() << " to " << path.string() << ": " << ec.message());
}

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  AEGIS_CHECK(in, NotFound, path.string() << " not found");
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    AEGIS_FAIL(CorruptData, path.string() << ": not valid JSON: " << e.what());
  }
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

/// The audit sample: `n` samples drawn without replacement, in dataset order.
torch::Tensor sample_indices(int64_t total, int64_t n, uint64_t seed) {
  if (n >= total) return torch::arange(total, torch::kLong);
  auto gen = make_generator(seed, "audit/sample");
  return std::get<0>(torch::randperm(total, gen, torch::kLong).slice(0, 0, n).sort());
}

}  // namespace

nlohmann::json strip_timings(const nlohmann::json& report) {
  if (report.is_object()) {
    nlohmann::json out = nlohmann::json::object();
    for (const auto& [k, v] : report.items())
      if (k != "seconds" && k != "run") out[k] = strip_timings(v);
    return out;
  }
  if (report.is_array()) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& v : report) out.push_back(strip_timings(v));
    return out;
  }
  return report;
}

std::string audit_report_schema_path() { return data_dir() + "/schema/audit-report.schema.json"; }

nlohmann::json load_audit_report(const std::string& path) {
  nlohmann::json j = read_json(path);
  AEGIS_CHECK(j.is_object() && j.value("schema", "") == "aegis-audit-report", CorruptData,
              path << ": not an aegis audit report");
  AEGIS_CHECK(j.value("schema_version", 0) == kAuditReportSchemaVersion, CorruptData,
              path << ": report schema version " << j.value("schema_version", 0) << ", this aegis reads "
                   << kAuditReportSchemaVersion);
  return j;
}

/// A rule's mitigation for this model: `aegis train ...` trains a built-in
/// architecture from scratch, so for a model the user brought (architecture
/// "torchscript") it names `--init MODEL`, which fine-tunes their own network.
static std::string mitigation_for(const std::string& command, const ModelMeta& meta, const std::string& model_path) {
  const std::string train = "aegis train ";
  if (command.rfind(train, 0) != 0 || meta.architecture != "torchscript") return command;
  return command + " --init " + (model_path.empty() ? std::string("MODEL") : model_path);
}

AuditReport run_audit(Classifier& model, const Dataset& data, const Suite& suite, const AuditOptions& o) {
  AEGIS_CHECK(!o.out_dir_.empty(), InvalidArgument, "audit: an output directory is needed");
  AEGIS_CHECK(!suite.checks.empty(), InvalidArgument, "audit: the suite has no checks");
  AEGIS_CHECK(data.size() > 0, InvalidArgument, "audit: the data set is empty");
  data.validate();
  check_compatible(model.meta(), data);
  const Catalog& catalog = default_catalog();
  auto t0 = std::chrono::steady_clock::now();
  std::string started = utc_now();

  // Build every check first: a bad suite fails before any work is done.
  std::vector<std::unique_ptr<Check>> checks;
  for (const auto& spec : suite.checks) {
    checks.push_back(make_check(spec.check, spec.params));
    for (const auto& rule : checks.back()->rules()) {
      AEGIS_CHECK(catalog.find_atlas(rule.atlas) && catalog.find_owasp(rule.owasp), Internal,
                  "check " << spec.check << ", rule " << rule.name << " maps to ids missing from the catalogue");
      effective_thresholds(spec, rule);
    }
  }

  const int64_t n = o.samples_ > 0 ? o.samples_ : suite.samples;
  torch::Tensor indices = sample_indices(data.size(), n, o.seed_);
  Dataset sample = data.subset(indices);
  const std::string model_sha = o.model_path_.empty() ? std::string() : sha256_file(o.model_path_);
  const std::string fingerprint = data.fingerprint(), sample_fingerprint = sample.fingerprint();
  if (o.training_data_) {
    o.training_data_->validate();
    AEGIS_CHECK(o.training_data_->size() > 0, InvalidArgument, "audit: the training data set is empty");
  }
  const std::string training_fingerprint = o.training_data_ ? o.training_data_->fingerprint() : std::string();

  fs::path out(o.out_dir_), checks_dir = out / "checks";
  fs::create_directories(checks_dir);

  AuditReport report;
  nlohmann::json jchecks = nlohmann::json::array(), findings = nlohmann::json::array(),
                 resumed = nlohmann::json::array();
  std::vector<Finding> all;
  for (size_t i = 0; i < suite.checks.size(); ++i) {
    const CheckSpec& spec = suite.checks[i];
    Check& check = *checks[i];
    nlohmann::json config = {{"check", spec.check},
                             {"params", check.options_json()},
                             {"model_sha256", model_sha},
                             {"sample_fingerprint", sample_fingerprint},
                             {"training_fingerprint", training_fingerprint},
                             {"seed", o.seed_},
                             {"batch_size", suite.batch_size},
                             {"aegis_version", AEGIS_VERSION}};
    const std::string key = sha256_hex(config.dump());
    fs::path file = checks_dir / (spec.id + ".json");
    CheckResult result;
    bool reused = false;
    if (o.resume_ && fs::exists(file)) {
      nlohmann::json saved = read_json(file);
      if (saved.value("key", "") == key) {
        result = CheckResult::from_json(saved.at("result"));
        reused = true;
        resumed.push_back(spec.id);
        ++report.resumed_checks;
        log_info("audit: " + spec.id + " resumed from " + file.string());
      }
    }
    if (!reused) {
      const uint64_t check_seed = derive_seed(o.seed_, "audit/check/" + spec.id);
      CheckContext ctx{model, sample, indices, check_seed, suite.batch_size, spec.id, o.training_data_};
      auto c0 = std::chrono::steady_clock::now();
      result = check.run(ctx);
      result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - c0).count();
      write_atomically(
          file,
          nlohmann::json({{"key", key}, {"id", spec.id}, {"config", config}, {"result", result.to_json()}}).dump(1));
    }
    if (o.after_check_) o.after_check_(spec.id);

    auto rules = check.rules();
    for (const auto& obs : result.observations) {
      auto it = std::find_if(rules.begin(), rules.end(), [&](const FindingRule& r) { return r.name == obs.rule; });
      AEGIS_CHECK(it != rules.end(), Internal, "check " << spec.id << " observed undeclared rule " << obs.rule);
      Finding f;
      f.id = spec.id + "/" + obs.rule;
      f.check = spec.id;
      f.rule = obs.rule;
      f.title = it->title;
      f.thresholds = effective_thresholds(spec, *it);
      f.severity = f.thresholds.grade(obs.value);
      f.summary = obs.summary;
      f.metric = it->metric;
      f.value = obs.value;
      f.evidence = obs.evidence;
      f.atlas = it->atlas;
      f.owasp = it->owasp;
      f.mitigation = mitigation_for(it->mitigation, model.meta(), o.model_path_);
      all.push_back(std::move(f));
    }
    nlohmann::json headline = result.to_json().at("headline");
    jchecks.push_back({{"id", spec.id},
                       {"check", spec.check},
                       {"params", check.options_json()},
                       {"status", result.status},
                       {"note", result.note},
                       {"metrics", result.metrics},
                       {"headline", headline},
                       {"artefacts", result.artefacts},
                       {"seconds", result.seconds}});
  }

  std::stable_sort(all.begin(), all.end(), [](const Finding& a, const Finding& b) { return a.severity > b.severity; });
  nlohmann::json counts = {{"critical", 0}, {"high", 0}, {"medium", 0}, {"low", 0}, {"info", 0}};
  for (const auto& f : all) {
    nlohmann::json j = f.to_json();
    j["atlas_name"] = catalog.atlas_name(f.atlas);
    j["owasp_name"] = catalog.owasp_name(f.owasp);
    findings.push_back(j);
    counts[severity_name(f.severity)] = counts[severity_name(f.severity)].get<int>() + 1;
    report.worst = std::max(report.worst, f.severity);
  }
  std::string verdict;
  if (report.worst >= Severity::High)
    verdict = fmt::format("FAIL: {} critical and {} high-severity findings; most severe: {}",
                          counts["critical"].get<int>(), counts["high"].get<int>(), all.front().title);
  else if (report.worst == Severity::Medium)
    verdict = fmt::format("WARN: {} medium-severity findings; most severe: {}", counts["medium"].get<int>(),
                          all.front().title);
  else
    verdict = "PASS: no finding above low severity for the attacks in this suite";

  std::set<std::string> atlas_used, owasp_used;
  for (const auto& f : all) {
    atlas_used.insert(f.atlas);
    owasp_used.insert(f.owasp);
  }
  nlohmann::json catalog_used = {
      {"version", catalog.version}, {"atlas", nlohmann::json::object()}, {"owasp", nlohmann::json::object()}};
  for (const auto& id : atlas_used) catalog_used["atlas"][id] = catalog.atlas_name(id);
  for (const auto& id : owasp_used) catalog_used["owasp"][id] = catalog.owasp_name(id);

  const auto& meta = model.meta();
  nlohmann::json class_names = nlohmann::json::array();
  for (int64_t c = 0; c < meta.num_classes; ++c) class_names.push_back(meta.class_name(c));
  nlohmann::json data_json = {{"source", o.data_source_.empty() ? data.source : o.data_source_},
                              {"samples_total", data.size()},
                              {"samples_audited", sample.size()},
                              {"fingerprint", fingerprint},
                              {"sample_fingerprint", sample_fingerprint}};
  if (o.training_data_)
    data_json["training_data"] = {
        {"source", o.training_source_.empty() ? o.training_data_->source : o.training_source_},
        {"samples", o.training_data_->size()},
        {"fingerprint", training_fingerprint}};
  report.report = {{"schema", "aegis-audit-report"},
                   {"schema_version", kAuditReportSchemaVersion},
                   {"aegis_version", AEGIS_VERSION},
                   {"seed", o.seed_},
                   {"model",
                    {{"path", o.model_path_},
                     {"sha256", model_sha},
                     {"input_shape", meta.input_shape},
                     {"num_classes", meta.num_classes},
                     {"class_names", class_names}}},
                   {"data", data_json},
                   {"suite", suite.to_json()},
                   {"verdict",
                    {{"worst_severity", severity_name(report.worst)},
                     {"counts", counts},
                     {"summary", verdict},
                     {"caveat",
                      "An audit measures the attacks it ran at the budgets it ran "
                      "them; passing it is evidence, not a proof of "
                      "robustness."}}},
                   {"findings", findings},
                   {"checks", jchecks},
                   {"catalog", catalog_used},
                   {"reproduce", o.reproduce_},
                   {"run",
                    {{"started", started},
                     {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()},
                     {"resumed_checks", resumed}}}};

  report.json_path = (out / "report.json").string();
  write_atomically(report.json_path, report.report.dump(1) + "\n");
  if (o.write_html_) {
    report.html_path = (out / "report.html").string();
    write_atomically(report.html_path, render_html_report(report.report));
  }
  return report;
}

}  // namespace aegis
