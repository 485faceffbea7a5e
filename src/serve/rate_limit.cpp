#include "aegis/serve/rate_limit.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>

namespace aegis::serve {

double SystemClock::now() const {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

RateDecision InProcessRateLimitStore::acquire(const std::string& bucket, const RateLimit& limit, double cost,
                                              double now) {
  if (limit.unlimited()) return {};
  const double interval = 1.0 / limit.rate;         // emission interval T
  const double tolerance = limit.burst * interval;  // tau: how far ahead the bucket may run
  if (cost > limit.burst) return {false, std::numeric_limits<double>::infinity()};
  std::lock_guard<std::mutex> lock(mu_);
  double& tat = tat_[bucket];
  const double new_tat = std::max(tat, now) + cost * interval;
  const double allow_at = new_tat - tolerance;
  if (allow_at > now + 1e-12) return {false, allow_at - now};
  tat = new_tat;
  return {};
}

bool InProcessRateLimitStore::add_daily(const std::string& bucket, int64_t day, int64_t amount, int64_t quota) {
  std::lock_guard<std::mutex> lock(mu_);
  auto& [d, count] = daily_[bucket];
  if (d != day) d = day, count = 0;
  if (quota > 0 && count + amount > quota) return false;
  count += amount;
  return true;
}

int64_t InProcessRateLimitStore::daily_count(const std::string& bucket, int64_t day) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = daily_.find(bucket);
  return it == daily_.end() || it->second.first != day ? 0 : it->second.second;
}

int64_t utc_day(double unix_seconds) { return static_cast<int64_t>(std::floor(unix_seconds / 86400.0)); }

double seconds_to_next_utc_day(double unix_seconds) {
  return static_cast<double>(utc_day(unix_seconds) + 1) * 86400.0 - unix_seconds;
}

}  // namespace aegis::serve
