#pragma once
// One function per subcommand: each adds its subcommand to the app and sets
// the callback that runs it. Add new subcommands here and in main.cpp.

#include <CLI/CLI.hpp>

#include "cli_common.h"

namespace aegis::cli {

void add_train_command(CLI::App& app, Context& ctx);
void add_eval_command(CLI::App& app, Context& ctx);
void add_info_command(CLI::App& app, Context& ctx);
void add_poison_command(CLI::App& app, Context& ctx);
void add_data_check_command(CLI::App& app, Context& ctx);
void add_data_scan_command(CLI::App& app, Context& ctx);
void add_data_filter_command(CLI::App& app, Context& ctx);
void add_scan_backdoor_command(CLI::App& app, Context& ctx);

}  // namespace aegis::cli
