#pragma once
// Headless Chromium for the tests that render aegis's pages (the audit
// report, the gateway's review page). scripts/setup installs it.

#include <filesystem>
#include <string>

namespace aegis::testing {

/// The Chromium binary, or "" when it is not installed.
inline std::string find_chromium() {
  for (const char* c : {"/usr/bin/chromium", "/usr/bin/chromium-browser"})
    if (std::filesystem::exists(c)) return c;
  return "";
}

}  // namespace aegis::testing
