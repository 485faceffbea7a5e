#pragma once
/// The gateway's state in Redis, shared by every replica that points at the
/// same server (`[server] state = "redis://host:port"` in serve.toml): rate
/// limits (GCRA, one atomic server-side script per decision) and daily
/// quotas, quarantined keys, throttles, the response rules' alert windows and
/// the review queue. N replicas then enforce one limit, see one alert history
/// and share one queue; a restart of a replica loses nothing.
///
/// Redis unreachable: every operation throws Error(Io), which the gateway
/// answers with 503 for what it could not check (fail closed). With
/// `fail_open` the rate limits and quarantine checks let requests through
/// instead, and every such decision is logged (FailOpenRateLimitStore); the
/// review queue and the rule windows still need Redis. The client reconnects
/// on the next request.
///
///   auto redis = std::make_shared<RedisClient>(RedisOptions("redis://127.0.0.1:6379"));
///   GatewayOptions o;
///   o.rates = std::make_shared<RedisRateLimitStore>(redis, "aegis:");
///   auto state = std::make_shared<RedisResponseState>(redis, "aegis:");

#include <functional>
#include <memory>
#include <string>

#include "aegis/serve/rate_limit.h"
#include "aegis/serve/redis_client.h"
#include "aegis/serve/response_state.h"

namespace aegis::serve {

class RedisRateLimitStore : public RateLimitStore {
 public:
  /// `prefix` namespaces the keys (several gateways on one Redis).
  RedisRateLimitStore(std::shared_ptr<RedisClient> redis, std::string prefix = "aegis:");
  RateDecision acquire(const std::string& bucket, const RateLimit& limit, double cost, double now) override;
  bool add_daily(const std::string& bucket, int64_t day, int64_t amount, int64_t quota) override;
  int64_t daily_count(const std::string& bucket, int64_t day) override;

 private:
  std::shared_ptr<RedisClient> redis_;
  std::string prefix_;
};

class RedisResponseState : public ResponseState {
 public:
  RedisResponseState(std::shared_ptr<RedisClient> redis, std::string prefix = "aegis:");
  bool quarantined(const std::string& key) const override;
  void set_quarantined(const std::string& key, bool on) override;
  double throttle(const std::string& key_model) const override;
  void set_throttle(const std::string& key_model, double factor) override;
  int64_t add_review(nlohmann::json item) override;
  void put_review(int64_t id, const nlohmann::json& item) override;
  std::map<int64_t, nlohmann::json> reviews() const override;
  int64_t push_window(const std::string& name, bool alert, int64_t size) override;
  void clear_windows(const std::string& prefix) override;

 private:
  std::shared_ptr<RedisClient> redis_;
  std::string prefix_;
};

/// Wraps a store whose backend may be down: when it throws Io, the request is
/// allowed (fail open) and `on_fail_open` is told (the gateway logs it loudly
/// and counts it). Only for deployments that prefer availability to limits.
class FailOpenRateLimitStore : public RateLimitStore {
 public:
  FailOpenRateLimitStore(std::shared_ptr<RateLimitStore> inner, std::function<void(const std::string&)> on_fail_open);
  RateDecision acquire(const std::string& bucket, const RateLimit& limit, double cost, double now) override;
  bool add_daily(const std::string& bucket, int64_t day, int64_t amount, int64_t quota) override;
  int64_t daily_count(const std::string& bucket, int64_t day) override;

 private:
  std::shared_ptr<RateLimitStore> inner_;
  std::function<void(const std::string&)> on_fail_open_;
};

/// The read side of a ResponseState whose backend may be down: quarantine and
/// throttle checks let the request through when it throws Io (fail open,
/// reported to `on_fail_open`); writes and the review queue still throw.
class FailOpenResponseState : public ResponseState {
 public:
  FailOpenResponseState(std::shared_ptr<ResponseState> inner, std::function<void(const std::string&)> on_fail_open);
  bool quarantined(const std::string& key) const override;
  void set_quarantined(const std::string& key, bool on) override { inner_->set_quarantined(key, on); }
  double throttle(const std::string& key_model) const override;
  void set_throttle(const std::string& key_model, double f) override { inner_->set_throttle(key_model, f); }
  int64_t add_review(nlohmann::json item) override { return inner_->add_review(std::move(item)); }
  void put_review(int64_t id, const nlohmann::json& item) override { inner_->put_review(id, item); }
  std::map<int64_t, nlohmann::json> reviews() const override { return inner_->reviews(); }
  int64_t push_window(const std::string& name, bool alert, int64_t size) override {
    return inner_->push_window(name, alert, size);
  }
  void clear_windows(const std::string& prefix) override { inner_->clear_windows(prefix); }

 private:
  std::shared_ptr<ResponseState> inner_;
  std::function<void(const std::string&)> on_fail_open_;
};

}  // namespace aegis::serve
