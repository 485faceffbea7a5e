#include "aegis/core/progress.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace aegis {

namespace {
std::atomic<ProgressMode> g_mode{ProgressMode::Auto};

ProgressMode from_env() {
  const char* v = std::getenv("AEGIS_PROGRESS");
  if (!v) return ProgressMode::Auto;
  std::string s = v;
  if (s == "quiet") return ProgressMode::Quiet;
  if (s == "lines") return ProgressMode::Lines;
  if (s == "bar") return ProgressMode::Bar;
  return ProgressMode::Auto;
}

ProgressMode resolve(ProgressMode m) {
  if (m == ProgressMode::Auto) m = g_mode.load();
  if (m == ProgressMode::Auto) m = from_env();
  if (m == ProgressMode::Auto) m = isatty(STDERR_FILENO) ? ProgressMode::Bar : ProgressMode::Lines;
  return m;
}

std::string format_seconds(double s) {
  if (s < 60) return fmt::format("{:.1f}s", s);
  return fmt::format("{}m{:02d}s", int(s) / 60, int(s) % 60);
}
}  // namespace

void set_default_progress_mode(ProgressMode mode) { g_mode.store(mode); }
ProgressMode default_progress_mode() { return g_mode.load(); }

Progress::Progress(std::string label, int64_t total, ProgressMode mode)
    : label_(std::move(label)), total_(total > 0 ? total : 1), mode_(resolve(mode)) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() {
  if (!finished_ && done_ > 0) finish();
}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::advance(int64_t n, const std::string& status) {
  done_ += n;
  if (done_ > total_) done_ = total_;
  if (!status.empty()) status_ = status;
  draw(false);
}

void Progress::finish(const std::string& status) {
  if (finished_) return;
  if (!status.empty()) status_ = status;
  done_ = total_;
  draw(true);
  finished_ = true;
}

void Progress::draw(bool final) {
  if (mode_ == ProgressMode::Quiet) return;
  double frac = double(done_) / double(total_);
  double elapsed = elapsed_seconds();
  if (mode_ == ProgressMode::Bar) {
    auto now = std::chrono::steady_clock::now();
    if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    const int width = 28;
    int filled = int(frac * width);
    std::string bar(filled, '#');
    bar += std::string(width - filled, '.');
    double eta = frac > 0 ? elapsed * (1 - frac) / frac : 0;
    std::string line = fmt::format("\r{} [{}] {:3.0f}% {} {}", label_, bar, frac * 100,
                                   final ? format_seconds(elapsed) : "eta " + format_seconds(eta), status_);
    std::fprintf(stderr, "%s\033[K%s", line.c_str(), final ? "\n" : "");
    std::fflush(stderr);
  } else {
    int decile = int(frac * 10);
    if (!final && decile == last_decile_) return;
    if (!final && decile == 10) return;  // the final line says it
    last_decile_ = decile;
    std::fprintf(stderr, "%s: %3.0f%% (%s) %s\n", label_.c_str(), frac * 100, format_seconds(elapsed).c_str(),
                 status_.c_str());
  }
}

void log_info(const std::string& message) {
  if (resolve(ProgressMode::Auto) == ProgressMode::Quiet) return;
  std::fprintf(stderr, "%s\n", message.c_str());
}

}  // namespace aegis
