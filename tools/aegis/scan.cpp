// aegis scan: unsafe model file scanning (zip + pickle opcodes, nothing executed).

#include <fmt/format.h>

#include <iostream>

#include "aegis/core/error.h"
#include "aegis/integrity/model_scan.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct ScanFlags {
  OutputFlags out;
  std::string path;
  std::vector<std::string> allow;
  std::string fail_on = "medium";
};

Severity parse_severity(const std::string& s) {
  for (Severity v : {Severity::Info, Severity::Low, Severity::Medium, Severity::High, Severity::Critical})
    if (s == severity_name(v)) return v;
  AEGIS_FAIL(InvalidArgument, "--fail-on must be low, medium, high or critical, got " << s);
}

}  // namespace

void add_scan_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<ScanFlags>();
  auto* sub = app.add_subcommand(
      "scan",
      "Scan a model file or directory for code it would run when loaded (pickle imports, archive tricks); "
      "nothing is loaded or executed. Exit 1 when a finding reaches --fail-on");
  add_output_flags(sub, f->out);
  sub->add_option("path", f->path, "Model file or directory")->required();
  sub->add_option("--allow", f->allow, "Extra imports to allow: module.name or module.*");
  sub->add_option("--fail-on", f->fail_on, "Lowest severity that fails the scan (low|medium|high|critical)")
      ->default_val("medium");
  sub->callback([f, &ctx] {
    f->out.apply();
    Severity threshold = parse_severity(f->fail_on);
    ScanReport r = scan_model(f->path, ScanOptions().allow(f->allow));
    bool failed = !r.findings.empty() && r.worst() >= threshold;
    if (failed) ctx.exit_code = 1;
    emit(f->out, r.to_json(), [&] {
      std::cout << fmt::format("scanned      {} file{}, {} pickle{}\n", r.files_scanned,
                               r.files_scanned == 1 ? "" : "s", r.pickles_scanned, r.pickles_scanned == 1 ? "" : "s");
      for (const auto& x : r.findings)
        std::cout << fmt::format("{:<9}    {}{}{}: {}\n", severity_name(x.severity), x.file, x.entry.empty() ? "" : ":",
                                 x.entry, x.detail);
      std::cout << (failed ? fmt::format("UNSAFE       worst finding: {}\n", severity_name(r.worst()))
                           : fmt::format("clean        no finding at or above {}\n", f->fail_on));
    });
  });
}

}  // namespace aegis::cli
