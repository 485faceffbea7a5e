#pragma once
/// Rate limits and quotas for the gateway: GCRA (the generic cell rate
/// algorithm, a token bucket kept as one "theoretical arrival time" per key)
/// for requests/s and samples/s, and a daily sample quota. State lives behind
/// RateLimitStore so several replicas can share it (a Redis store later); the
/// in-process store is the default. Time comes from a Clock so tests drive it.
///
///   ManualClock clock(1000.0);
///   InProcessRateLimitStore store;
///   RateDecision d = store.acquire("key1/requests", RateLimit{10.0, 5.0}, 1.0,
///   clock.now()); if (!d.allowed) reply_429(d.retry_after_s);

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>

namespace aegis::serve {

/// Seconds since the Unix epoch; injected wherever time decides something.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual double now() const = 0;
};

/// The system clock.
class SystemClock : public Clock {
 public:
  double now() const override;
};

/// A clock that only moves when told (tests, simulations).
class ManualClock : public Clock {
 public:
  explicit ManualClock(double start = 0.0) : t_(start) {}
  double now() const override { return t_.load(); }
  void advance(double seconds) { t_.store(t_.load() + seconds); }
  void set(double t) { t_.store(t); }

 private:
  std::atomic<double> t_;
};

/// `rate` units per second, with bursts up to `burst` units. rate <= 0 =
/// unlimited.
struct RateLimit {
  double rate = 0.0;
  double burst = 1.0;
  bool unlimited() const { return rate <= 0.0; }
};

struct RateDecision {
  bool allowed = true;
  /// When refused: seconds until the same request would be allowed
  /// (infinity when it never can, e.g. a cost above the burst).
  double retry_after_s = 0.0;
};

/// Shared state of the limits. Implementations must be thread-safe.
class RateLimitStore {
 public:
  virtual ~RateLimitStore() = default;
  /// GCRA: admits `cost` units for `bucket` at time `now` under `limit`, or
  /// refuses without consuming anything.
  virtual RateDecision acquire(const std::string& bucket, const RateLimit& limit, double cost, double now) = 0;
  /// Daily quota: adds `amount` to `bucket`'s count for UTC day `day` unless
  /// that would exceed `quota`; returns whether it was added.
  virtual bool add_daily(const std::string& bucket, int64_t day, int64_t amount, int64_t quota) = 0;
  /// Current count of `bucket` for `day`.
  virtual int64_t daily_count(const std::string& bucket, int64_t day) = 0;
};

/// Everything in this process's memory (one replica).
class InProcessRateLimitStore : public RateLimitStore {
 public:
  RateDecision acquire(const std::string& bucket, const RateLimit& limit, double cost, double now) override;
  bool add_daily(const std::string& bucket, int64_t day, int64_t amount, int64_t quota) override;
  int64_t daily_count(const std::string& bucket, int64_t day) override;

 private:
  std::mutex mu_;
  std::unordered_map<std::string, double> tat_;                         // theoretical arrival times
  std::unordered_map<std::string, std::pair<int64_t, int64_t>> daily_;  // bucket -> (day, count)
};

/// The UTC day number of a Unix time, and seconds until that day ends.
int64_t utc_day(double unix_seconds);
double seconds_to_next_utc_day(double unix_seconds);

}  // namespace aegis::serve
