// aegis log verify: recompute the audit log's hash chain and name the first
// edited, removed or reordered entry. Exit 1 when the log does not verify.

#include <iostream>

#include "aegis/serve/audit_log.h"
#include "commands.h"

namespace aegis::cli {

namespace {

struct LogFlags {
  OutputFlags out;
  std::string audit = "audit.db";
  std::string expect_head;
};

}  // namespace

void add_log_command(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<LogFlags>();
  auto* log = app.add_subcommand("log", "Inspect the gateway's audit log");
  log->require_subcommand(1);
  auto* verify = log->add_subcommand("verify", "Verify the hash chain of an audit log");
  add_output_flags(verify, f->out);
  verify->add_option("audit_log", f->audit, "Audit log (SQLite)")->capture_default_str();
  verify->add_option("--expect-head", f->expect_head,
                     "Hash the last entry must have (kept elsewhere; catches entries cut from the end)");
  verify->callback([f, &ctx] {
    serve::AuditVerification v = serve::verify_audit_log(f->audit, f->expect_head);
    if (!v.ok) ctx.exit_code = 1;
    emit(f->out, v.to_json(), [&] {
      if (v.ok)
        std::cout << "audit log OK: " << v.entries << " entries, head " << v.head << "\n";
      else
        std::cout << "audit log TAMPERED at entry " << v.bad_seq << ": " << v.problem << "\n";
    });
  });
}

}  // namespace aegis::cli
