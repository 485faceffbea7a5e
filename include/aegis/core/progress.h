#pragma once
/// Progress on long work: a bar redrawn in place on a terminal, a plain log
/// line every 10% otherwise, nothing when quiet.
///
///   Progress bar("train epoch 1", batches.size());
///   for (...) { ...; bar.advance(1, fmt::format("loss {:.3f}", loss)); }
///   bar.finish("acc 0.91");

#include <chrono>
#include <cstdint>
#include <string>

namespace aegis {

enum class ProgressMode { Auto, Bar, Lines, Quiet };

/// Process-wide default used by Progress objects built with Auto
/// (the CLI sets Quiet for --quiet and --json). With Auto, $AEGIS_PROGRESS
/// (quiet, lines, bar) decides, then whether stderr is a terminal.
void set_default_progress_mode(ProgressMode mode);
ProgressMode default_progress_mode();

class Progress {
 public:
  Progress(std::string label, int64_t total, ProgressMode mode = ProgressMode::Auto);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(int64_t n = 1, const std::string& status = {});
  void finish(const std::string& status = {});
  double elapsed_seconds() const;

 private:
  void draw(bool final);

  std::string label_;
  int64_t total_;
  int64_t done_ = 0;
  ProgressMode mode_;
  std::string status_;
  int last_decile_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

/// A log line on stderr unless quiet (timestamps are left to the caller).
void log_info(const std::string& message);

}  // namespace aegis
