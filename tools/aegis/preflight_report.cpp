#include "preflight_report.h"

#include <fmt/format.h>

#include <iostream>

namespace aegis::cli {

void print_preflight(const Preflight& p) {
  if (p.checks.empty()) return;
  std::cout << "\npreflight checks\n";
  for (const auto& c : p.checks) {
    const char* tag = c.verdict == PreflightVerdict::Pass   ? " ok "
                      : c.verdict == PreflightVerdict::Warn ? "WARN"
                                                            : "REFUSED";
    std::cout << fmt::format("  [{}] {}: {}\n", tag, c.name, c.detail);
  }
}

}  // namespace aegis::cli
