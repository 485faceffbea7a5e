#pragma once
/// A small, thread-safe Redis client (hiredis underneath) for the gateway's
/// shared state: a pool of connections, each command with a timeout, and
/// reconnection on the next command after a failure. Every failure to reach
/// Redis (refused, timed out, dropped) throws Error(Io) naming the server, so
/// the gateway answers 503 for what it cannot check (fail closed) and never
/// crashes; a Redis error reply (a bug, a wrong type) throws Internal.
/// Scripts run by EVALSHA, loaded on first use and again after a Redis
/// restart (NOSCRIPT).
///
///   RedisClient redis(RedisOptions("redis://127.0.0.1:6379"));
///   RedisValue v = redis.command({"INCR", "aegis:n"});    // v.integer
///   RedisValue r = redis.eval(script, {"key"}, {"1.5"});

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

struct redisContext;

namespace aegis::serve {

struct RedisOptions {
  std::string url_;            ///< redis://host[:port][/db]
  double timeout_s_ = 0.25;    ///< connect and per-command timeout
  double retry_after_s_ = 0.5; ///< after a failed connect, commands fail fast for this long
  explicit RedisOptions(std::string url) : url_(std::move(url)) {}
  RedisOptions& timeout(double s) { timeout_s_ = s; return *this; }
  RedisOptions& retry_after(double s) { retry_after_s_ = s; return *this; }
};

/// A parsed reply.
struct RedisValue {
  enum class Type { Nil, Integer, String, Array, Status };
  Type type = Type::Nil;
  int64_t integer = 0;
  std::string str;  ///< String and Status
  std::vector<RedisValue> elements;
  bool nil() const { return type == Type::Nil; }
};

class RedisClient {
 public:
  /// Parses the URL (throws InvalidArgument); connects lazily.
  explicit RedisClient(RedisOptions options);
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  /// One command, binary-safe arguments.
  RedisValue command(const std::vector<std::string>& args);
  /// Several commands sent together (one round trip), replies in order.
  std::vector<RedisValue> pipeline(const std::vector<std::vector<std::string>>& commands);
  /// A Lua script with KEYS and ARGV (EVALSHA, loading it when Redis does not know it).
  RedisValue eval(const std::string& script, const std::vector<std::string>& keys,
                  const std::vector<std::string>& args);
  /// True when a PING succeeds now.
  bool ping();
  const std::string& host() const { return host_; }
  int port() const { return port_; }
  std::string describe() const;

 private:
  struct Conn;
  std::unique_ptr<Conn> connect();  // a new connection (fails fast while Redis is known down)
  void release(std::unique_ptr<Conn> c);
  std::vector<RedisValue> run(const std::vector<std::vector<std::string>>& commands);

  RedisOptions o_;
  std::string host_;
  int port_ = 6379;
  int db_ = 0;
  std::mutex mu_;
  std::vector<std::unique_ptr<Conn>> idle_;
  std::chrono::steady_clock::time_point down_until_{};
  std::unordered_map<std::string, std::string> sha_;  // script -> SHA1
};

}  // namespace aegis::serve
