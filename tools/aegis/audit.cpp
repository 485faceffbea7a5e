// aegis audit: the penetration test of a model (report.json + report.html),
// and `aegis audit diff` to compare two audits (before/after hardening).

#include "aegis/audit/audit.h"

#include <fmt/format.h>

#include <iostream>
#include <optional>

#include "aegis/audit/diff.h"
#include "aegis/core/error.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct AuditFlags {
  OutputFlags out;
  DataFlags data;
  ModelFlags model;
  std::string suite;
  std::string budget = "quick";
  std::string out_dir;
  bool resume = false;
  std::string fail_on;
  int64_t samples = 0;
  std::string training_data, training_labels;
};

struct DiffFlags {
  OutputFlags out;
  std::string before, after;
};

std::string quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789-_./:=,") == std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

std::string reproduce_command(const AuditFlags& f, const DataSpec& spec) {
  std::string c =
      "aegis audit --model " + quote(f.model.path) + " --data " + quote(spec.path_) + " --split " + quote(spec.split_);
  if (!spec.labels_.empty()) c += " --labels " + quote(spec.labels_);
  if (spec.limit_ > 0) c += " --limit " + std::to_string(spec.limit_);
  c += f.suite.empty() ? " --budget " + f.budget : " --suite " + quote(f.suite);
  if (f.samples > 0) c += " --samples " + std::to_string(f.samples);
  if (!f.training_data.empty()) c += " --training-data " + quote(f.training_data);
  if (!f.training_labels.empty()) c += " --training-labels " + quote(f.training_labels);
  c += " --seed " + std::to_string(f.out.seed) + " --out " + quote(f.out_dir);
  return c;
}

void run_audit_command(AuditFlags& f, Context& ctx) {
  f.out.apply();
  AEGIS_CHECK(!f.model.path.empty(), InvalidArgument, "audit: --model is required");
  AEGIS_CHECK(!f.out_dir.empty(), InvalidArgument, "audit: --out is required");
  std::optional<Severity> fail_on;
  if (!f.fail_on.empty()) fail_on = parse_severity(f.fail_on);
  Suite suite = f.suite.empty() ? builtin_suite(f.budget) : load_suite(f.suite);
  DataSpec spec = f.data.spec("test");
  Dataset data = load_dataset(spec);
  auto model = f.model.load(&data);
  std::optional<Dataset> training;
  if (!f.training_data.empty()) {
    DataSpec ts(f.training_data);
    ts.split("train").labels(f.training_labels);
    training = load_dataset(ts);
  } else {
    AEGIS_CHECK(f.training_labels.empty(), InvalidArgument, "audit: --training-labels needs --training-data");
  }
  AuditOptions o(f.out_dir);
  if (training) o.training_data(&*training, f.training_data + ":train");
  o.seed(f.out.seed)
      .resume(f.resume)
      .model_path(f.model.path)
      .data_source(spec.path_ + ":" + spec.split_)
      .samples(f.samples)
      .reproduce(reproduce_command(f, spec));
  AuditReport r = run_audit(*model, data, suite, o);
  if (fail_on && r.worst >= *fail_on) ctx.exit_code = 3;
  nlohmann::json summary = {{"verdict", r.report["verdict"]},
                            {"findings", r.report["findings"].size()},
                            {"report_json", r.json_path},
                            {"report_html", r.html_path},
                            {"resumed_checks", r.resumed_checks},
                            {"fail_on", f.fail_on.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.fail_on)},
                            {"failed", ctx.exit_code == 3}};
  if (f.out.json) summary["top_findings"] = nlohmann::json::array();
  int shown = 0;
  for (const auto& fd : r.report["findings"])
    if (shown++ < 5 && f.out.json) summary["top_findings"].push_back(fd);
  emit(f.out, summary, [&] {
    const auto& v = r.report["verdict"];
    std::cout << v["summary"].get<std::string>() << "\n";
    const auto& c = v["counts"];
    std::cout << fmt::format("findings: {} critical, {} high, {} medium, {} low, {} info\n", c["critical"].get<int>(),
                             c["high"].get<int>(), c["medium"].get<int>(), c["low"].get<int>(), c["info"].get<int>());
    std::cout << "\ntop findings\n";
    int k = 0;
    for (const auto& fd : r.report["findings"]) {
      if (k++ == 5) break;
      std::cout << fmt::format(
          "  [{:<8}] {}  ({} {} / {} {})\n             {}\n             "
          "mitigation: {}\n",
          fd["severity"].get<std::string>(), fd["title"].get<std::string>(), fd["atlas"].get<std::string>(),
          fd["atlas_name"].get<std::string>(), fd["owasp"].get<std::string>(), fd["owasp_name"].get<std::string>(),
          fd["summary"].get<std::string>(), fd["mitigation"].get<std::string>());
    }
    if (r.resumed_checks) std::cout << fmt::format("\n{} checks resumed from {}/checks\n", r.resumed_checks, f.out_dir);
    std::cout << "\nreport: " << r.json_path << "\n        " << r.html_path << "\n";
    if (ctx.exit_code == 3) std::cout << "failing: a finding at or above '" << f.fail_on << "' exists\n";
  });
}

std::string fmt_value(const nlohmann::json& v) { return v.is_number() ? fmt::format("{:.4g}", v.get<double>()) : "-"; }

void run_diff(DiffFlags& f) {
  f.out.apply();
  nlohmann::json d = diff_reports(load_audit_report(f.before), load_audit_report(f.after));
  emit(f.out, d, [&] {
    std::cout << fmt::format("before: {} ({})\nafter:  {} ({})\n\n", d["before"]["model_path"].get<std::string>(),
                             d["before"]["worst_severity"].get<std::string>(),
                             d["after"]["model_path"].get<std::string>(),
                             d["after"]["worst_severity"].get<std::string>());
    std::cout << fmt::format("{:<24} {:<34} {:>10} {:>10} {:>10}  {}\n", "check", "metric", "before", "after", "delta",
                             "change");
    for (const auto& m : d["metrics"])
      std::cout << fmt::format("{:<24} {:<34} {:>10} {:>10} {:>10}  {}\n", m["check"].get<std::string>(),
                               m["name"].get<std::string>(), fmt_value(m["before"]), fmt_value(m["after"]),
                               fmt_value(m["delta"]), m["change"].get<std::string>());
    std::cout << "\nfindings whose severity changed\n";
    int changed = 0;
    for (const auto& x : d["findings"]) {
      if (x["change"] == "unchanged") continue;
      ++changed;
      std::cout << fmt::format("  {:<48} {:>8} -> {:<8} {}\n", x["id"].get<std::string>(),
                               x["before"].is_string() ? x["before"].get<std::string>() : "-",
                               x["after"].is_string() ? x["after"].get<std::string>() : "-",
                               x["change"].get<std::string>());
    }
    if (!changed) std::cout << "  (none)\n";
    std::cout << fmt::format(
        "\n{} metrics improved, {} regressed; {} findings improved, {} "
        "regressed\n",
        d["improved"].get<int>(), d["regressed"].get<int>(), d["findings_improved"].get<int>(),
        d["findings_regressed"].get<int>());
    for (const auto& w : d["warnings"]) std::cout << "warning: " << w.get<std::string>() << "\n";
  });
}

}  // namespace

void add_audit_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<AuditFlags>();
  auto* sub = app.add_subcommand("audit",
                                 "Penetration test of a model: runs a suite of attacks and "
                                 "checks, writes report.json and report.html.\n"
                                 "Exit status 3 with --fail-on when a finding at or above that "
                                 "severity exists.");
  add_output_flags(sub, f->out);
  add_model_flags(sub, f->model, /*required=*/false);
  add_data_flags(sub, f->data, "test");
  sub->add_option("--suite", f->suite,
                  "Suite file (TOML) listing checks, parameters and thresholds "
                  "(docs/audit.md)");
  sub->add_option("--budget", f->budget,
                  "Built-in suite when no --suite is given (privacy: membership inference and the DP audit, which "
                  "retrains the model; needs --training-data)")
      ->check(CLI::IsMember({"quick", "standard", "thorough", "privacy"}))
      ->capture_default_str();
  sub->add_option("--out", f->out_dir, "Output directory (report.json, report.html, checks/)");
  sub->add_flag("--resume", f->resume,
                "Reuse the finished checks saved in --out/checks by an "
                "interrupted audit");
  sub->add_option("--fail-on", f->fail_on, "Exit 3 when a finding at or above this severity exists")
      ->check(CLI::IsMember({"critical", "high", "medium", "low", "info"}));
  sub->add_option("--samples", f->samples, "Audit this many samples (overrides the suite)")->check(CLI::PositiveNumber);
  sub->add_option("--training-data", f->training_data,
                  "The model's training set (fashion-mnist, IDX, NPY or CSV, its train split): enables the "
                  "data-validation and poison-detection checks of the suite");
  sub->add_option("--training-labels", f->training_labels, "Labels file of --training-data (IDX or NPY)");

  auto d = std::make_shared<DiffFlags>();
  auto* diff = sub->add_subcommand("diff", "Compare two audit reports: what improved and what regressed");
  add_output_flags(diff, d->out);
  diff->add_option("before", d->before, "report.json of the earlier audit")->required()->check(CLI::ExistingFile);
  diff->add_option("after", d->after, "report.json of the later audit")->required()->check(CLI::ExistingFile);
  diff->callback([d] { run_diff(*d); });

  sub->callback([f, diff, &ctx] {
    if (diff->parsed()) return;
    run_audit_command(*f, ctx);
  });
}

}  // namespace aegis::cli
