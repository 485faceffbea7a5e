#pragma once
// The privacy and model-theft attacks of the CLI (membership inference,
// model inversion / attribute inference, model extraction). Exposed two
// ways so `aegis attack` can dispatch to it: as the subcommand
// `aegis privacy-attack --attack membership|inversion|extraction ...`, and as
// a function taking the arguments after the subcommand's name.

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "cli_common.h"

namespace aegis::cli {

/// True for the attack names this file handles: membership, inversion,
/// extraction.
bool is_privacy_attack(const std::string& name);

/// Adds its flags and callback to `sub` (the lead can reuse them for `aegis
/// attack`).
void setup_privacy_attack_command(CLI::App* sub, Context& ctx);

/// Parses `args` (e.g. {"--attack", "membership", "-m", "model.pt"}) and runs
/// the attack; returns the exit status. Errors propagate as aegis::Error.
int run_privacy_attack_command(const std::vector<std::string>& args);

}  // namespace aegis::cli
