#pragma once
// One function per subcommand: each adds its subcommand to the app and sets
// the callback that runs it. Add new subcommands here and in main.cpp.

#include <CLI/CLI.hpp>

#include "cli_common.h"

namespace aegis::cli {

void add_train_command(CLI::App& app, Context& ctx);
void add_eval_command(CLI::App& app, Context& ctx);
void add_info_command(CLI::App& app, Context& ctx);
/// model meta: write aegis metadata into an archive.
void add_model_command(CLI::App& app, Context& ctx);
/// keygen, sign, verify (integrity/model_signing.h).
void add_signing_commands(CLI::App& app, Context& ctx);
/// scan (integrity/model_scan.h).
void add_scan_command(CLI::App& app, Context& ctx);
/// encrypt, decrypt (integrity/encryption.h).
void add_crypt_commands(CLI::App& app, Context& ctx);
/// registry ... (integrity/registry.h).
void add_registry_command(CLI::App& app, Context& ctx);
/// data diff|register|log|verify (integrity/data_diff.h, data_ledger.h).
void add_data_command(CLI::App& app, Context& ctx);
void add_serve_command(CLI::App& app, Context& ctx);
void add_keys_command(CLI::App& app, Context& ctx);
void add_log_command(CLI::App& app, Context& ctx);
void add_evaluate_command(CLI::App& app, Context& ctx);
void add_attack_command(CLI::App& app, Context& ctx);
/// gateway-attack (serve/gateway_attack.h).
void add_gateway_attack_command(CLI::App& app, Context& ctx);
void add_certify_command(CLI::App& app, Context& ctx);
void add_detect_eval_command(CLI::App& app, Context& ctx);
void add_audit_command(CLI::App& app, Context& ctx);
void add_poison_command(CLI::App& app, Context& ctx);
void add_data_check_command(CLI::App& app, Context& ctx);
void add_data_scan_command(CLI::App& app, Context& ctx);
void add_data_filter_command(CLI::App& app, Context& ctx);
void add_scan_backdoor_command(CLI::App& app, Context& ctx);
/// explain (explain/*.h).
void add_explain_command(CLI::App& app, Context& ctx);
/// dp account|noise (privacy/accountant.h).
void add_dp_command(CLI::App& app, Context& ctx);

}  // namespace aegis::cli
