// aegis: the one command-line tool. Every error is caught here, once: a
// one-line message on stderr, exit 2 for usage errors and 1 for failures.

#include <cstdio>
#include <exception>
#include <new>

#include <CLI/CLI.hpp>

#include "aegis/core/error.h"
#include "commands.h"

int main(int argc, char** argv) {
  CLI::App app{"aegis: attack, harden, audit and serve machine-learning models"};
  app.set_version_flag("--version", AEGIS_VERSION);
  app.require_subcommand(1);
  app.get_formatter()->column_width(40);

  aegis::cli::Context ctx;
  aegis::cli::add_train_command(app, ctx);
  aegis::cli::add_eval_command(app, ctx);
  aegis::cli::add_info_command(app, ctx);
  aegis::cli::add_model_command(app, ctx);
  aegis::cli::add_signing_commands(app, ctx);
  aegis::cli::add_scan_command(app, ctx);
  aegis::cli::add_crypt_commands(app, ctx);
  aegis::cli::add_registry_command(app, ctx);
  aegis::cli::add_data_command(app, ctx);
  aegis::cli::add_serve_command(app, ctx);
  aegis::cli::add_keys_command(app, ctx);
  aegis::cli::add_log_command(app, ctx);
  aegis::cli::add_evaluate_command(app, ctx);
  aegis::cli::add_attack_command(app, ctx);
  aegis::cli::add_certify_command(app, ctx);
  aegis::cli::add_detect_eval_command(app, ctx);
  aegis::cli::add_gateway_attack_command(app, ctx);
  aegis::cli::add_audit_command(app, ctx);
  aegis::cli::add_poison_command(app, ctx);
  aegis::cli::add_data_check_command(app, ctx);
  aegis::cli::add_data_scan_command(app, ctx);
  aegis::cli::add_data_filter_command(app, ctx);
  aegis::cli::add_scan_backdoor_command(app, ctx);
  aegis::cli::add_explain_command(app, ctx);
  aegis::cli::add_dp_command(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const aegis::Error& e) {
    std::fprintf(stderr, "aegis: error: %s\n", aegis::one_line_message(e).c_str());
    return e.kind() == aegis::ErrorKind::InvalidArgument ? 2 : 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "aegis: error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "aegis: error: %s\n", aegis::one_line_message(e).c_str());
    return 1;
  }
  return ctx.exit_code;
}
