#include "aegis/serve/redis_state.h"

#include <cmath>
#include <limits>

#include "aegis/core/error.h"

namespace aegis::serve {

namespace {

std::string num(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// GCRA, the same arithmetic as InProcessRateLimitStore, atomic in Redis.
// Replies {1, "0"} or {0, retry_after} (a string: Lua numbers would be
// truncated to integers on the way out).
const char* kGcra = R"lua(
local rate, burst, cost, now = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local interval = 1 / rate
local tolerance = burst * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local new_tat = math.max(tat, now) + cost * interval
local allow_at = new_tat - tolerance
if allow_at > now + 1e-12 then return {0, string.format('%.17g', allow_at - now)} end
redis.call('SET', KEYS[1], string.format('%.17g', new_tat), 'EX', math.max(60, math.ceil(2 * (new_tat - now)) + 1))
return {1, '0'}
)lua";

const char* kDaily = R"lua(
local amount, quota = tonumber(ARGV[1]), tonumber(ARGV[2])
local c = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if quota > 0 and c + amount > quota then return 0 end
redis.call('INCRBY', KEYS[1], amount)
redis.call('EXPIRE', KEYS[1], 172800)
return 1
)lua";

const char* kWindow = R"lua(
local size = tonumber(ARGV[2])
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -size, -1)
redis.call('EXPIRE', KEYS[1], 604800)
if redis.call('LLEN', KEYS[1]) < size then return -1 end
local c = 0
for _, v in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do if v == '1' then c = c + 1 end end
return c
)lua";

const char* kPutReview = R"lua(
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if (tonumber(redis.call('GET', KEYS[2]) or '0') or 0) < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1]) end
return 1
)lua";

/// `s` with Redis glob characters escaped, for SCAN MATCH.
std::string glob_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

}  // namespace

RedisRateLimitStore::RedisRateLimitStore(std::shared_ptr<RedisClient> redis, std::string prefix)
    : redis_(std::move(redis)), prefix_(std::move(prefix)) {
  AEGIS_CHECK(redis_ != nullptr, InvalidArgument, "the Redis rate-limit store needs a client");
}

RateDecision RedisRateLimitStore::acquire(const std::string& bucket, const RateLimit& limit, double cost, double now) {
  if (limit.unlimited()) return {};
  if (cost > limit.burst) return {false, std::numeric_limits<double>::infinity()};
  RedisValue v = redis_->eval(kGcra, {prefix_ + "gcra:" + bucket}, {num(limit.rate), num(limit.burst), num(cost), num(now)});
  AEGIS_CHECK(v.elements.size() == 2, Internal, "unexpected reply from the rate-limit script");
  if (v.elements[0].integer == 1) return {};
  return {false, std::stod(v.elements[1].str)};
}

bool RedisRateLimitStore::add_daily(const std::string& bucket, int64_t day, int64_t amount, int64_t quota) {
  return redis_->eval(kDaily, {prefix_ + "day:" + bucket + ":" + std::to_string(day)},
                      {std::to_string(amount), std::to_string(quota)})
             .integer == 1;
}

int64_t RedisRateLimitStore::daily_count(const std::string& bucket, int64_t day) {
  RedisValue v = redis_->command({"GET", prefix_ + "day:" + bucket + ":" + std::to_string(day)});
  return v.nil() ? 0 : std::stoll(v.str);
}

RedisResponseState::RedisResponseState(std::shared_ptr<RedisClient> redis, std::string prefix)
    : redis_(std::move(redis)), prefix_(std::move(prefix)) {
  AEGIS_CHECK(redis_ != nullptr, InvalidArgument, "the Redis response state needs a client");
}

bool RedisResponseState::quarantined(const std::string& key) const {
  return redis_->command({"SISMEMBER", prefix_ + "quarantine", key}).integer == 1;
}

void RedisResponseState::set_quarantined(const std::string& key, bool on) {
  redis_->command({on ? "SADD" : "SREM", prefix_ + "quarantine", key});
}

double RedisResponseState::throttle(const std::string& key_model) const {
  RedisValue v = redis_->command({"HGET", prefix_ + "throttle", key_model});
  return v.nil() ? 1.0 : std::stod(v.str);
}

void RedisResponseState::set_throttle(const std::string& key_model, double factor) {
  redis_->command({"HSET", prefix_ + "throttle", key_model, num(factor)});
}

int64_t RedisResponseState::add_review(nlohmann::json item) {
  const int64_t id = redis_->command({"INCR", prefix_ + "review:next"}).integer;
  item["id"] = id;
  redis_->command({"HSET", prefix_ + "reviews", std::to_string(id), item.dump()});
  return id;
}

void RedisResponseState::put_review(int64_t id, const nlohmann::json& item) {
  redis_->eval(kPutReview, {prefix_ + "reviews", prefix_ + "review:next"}, {std::to_string(id), item.dump()});
}

std::map<int64_t, nlohmann::json> RedisResponseState::reviews() const {
  RedisValue v = redis_->command({"HGETALL", prefix_ + "reviews"});
  std::map<int64_t, nlohmann::json> out;
  for (size_t i = 0; i + 1 < v.elements.size(); i += 2) {
    try {
      out[std::stoll(v.elements[i].str)] = nlohmann::json::parse(v.elements[i + 1].str);
    } catch (const std::exception& e) {
      AEGIS_FAIL(CorruptData, redis_->describe() << ": review item " << v.elements[i].str << " is not JSON");
    }
  }
  return out;
}

int64_t RedisResponseState::push_window(const std::string& name, bool alert, int64_t size) {
  AEGIS_CHECK(size >= 1, InvalidArgument, "a rule window must hold at least one outcome");
  return redis_->eval(kWindow, {prefix_ + "win:" + name}, {alert ? "1" : "0", std::to_string(size)}).integer;
}

void RedisResponseState::clear_windows(const std::string& p) {
  const std::string match = glob_escape(prefix_ + "win:" + p) + "*";
  std::string cursor = "0";
  do {
    RedisValue v = redis_->command({"SCAN", cursor, "MATCH", match, "COUNT", "1000"});
    AEGIS_CHECK(v.elements.size() == 2, Internal, "unexpected SCAN reply");
    cursor = v.elements[0].str;
    std::vector<std::string> del = {"DEL"};
    for (const auto& k : v.elements[1].elements) del.push_back(k.str);
    if (del.size() > 1) redis_->command(del);
  } while (cursor != "0");
}

namespace {

/// `f()`, or `fallback` when the backend is unreachable (Io), reported to `on_fail_open`.
template <typename T, typename F>
T or_fail_open(F&& f, T fallback, const std::function<void(const std::string&)>& on_fail_open) {
  try {
    return f();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::Io) throw;
    if (on_fail_open) on_fail_open(e.what());
    return fallback;
  }
}

}  // namespace

FailOpenRateLimitStore::FailOpenRateLimitStore(std::shared_ptr<RateLimitStore> inner,
                                               std::function<void(const std::string&)> on_fail_open)
    : inner_(std::move(inner)), on_fail_open_(std::move(on_fail_open)) {}

RateDecision FailOpenRateLimitStore::acquire(const std::string& bucket, const RateLimit& limit, double cost,
                                             double now) {
  return or_fail_open([&] { return inner_->acquire(bucket, limit, cost, now); }, RateDecision{}, on_fail_open_);
}

bool FailOpenRateLimitStore::add_daily(const std::string& bucket, int64_t day, int64_t amount, int64_t quota) {
  return or_fail_open([&] { return inner_->add_daily(bucket, day, amount, quota); }, true, on_fail_open_);
}

int64_t FailOpenRateLimitStore::daily_count(const std::string& bucket, int64_t day) {
  return or_fail_open([&] { return inner_->daily_count(bucket, day); }, int64_t(0), on_fail_open_);
}

FailOpenResponseState::FailOpenResponseState(std::shared_ptr<ResponseState> inner,
                                             std::function<void(const std::string&)> on_fail_open)
    : inner_(std::move(inner)), on_fail_open_(std::move(on_fail_open)) {}

bool FailOpenResponseState::quarantined(const std::string& key) const {
  return or_fail_open([&] { return inner_->quarantined(key); }, false, on_fail_open_);
}

double FailOpenResponseState::throttle(const std::string& key_model) const {
  return or_fail_open([&] { return inner_->throttle(key_model); }, 1.0, on_fail_open_);
}

}  // namespace aegis::serve
