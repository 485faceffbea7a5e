#pragma once
// The preflight checks as the evaluate and attack subcommands print them.

#include "aegis/attacks/evasion/preflight.h"

namespace aegis::cli {

/// "preflight checks" and one line per check, [ ok ], [WARN] or [REFUSED].
void print_preflight(const Preflight& p);

}  // namespace aegis::cli
