#include "aegis/serve/redis_client.h"

#include <hiredis/hiredis.h>
#include <openssl/sha.h>

#include <cstdio>
#include <regex>

#include "aegis/core/error.h"

namespace aegis::serve {

struct RedisClient::Conn {
  redisContext* ctx = nullptr;
  ~Conn() {
    if (ctx) redisFree(ctx);
  }
};

namespace {

timeval to_timeval(double s) {
  timeval tv;
  tv.tv_sec = static_cast<time_t>(s);
  tv.tv_usec = static_cast<suseconds_t>((s - double(tv.tv_sec)) * 1e6);
  return tv;
}

RedisValue convert(const redisReply* r) {
  RedisValue v;
  switch (r->type) {
    case REDIS_REPLY_INTEGER:
      v.type = RedisValue::Type::Integer;
      v.integer = r->integer;
      break;
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
      v.type = r->type == REDIS_REPLY_STRING ? RedisValue::Type::String : RedisValue::Type::Status;
      v.str.assign(r->str, r->len);
      break;
    case REDIS_REPLY_ARRAY:
      v.type = RedisValue::Type::Array;
      for (size_t i = 0; i < r->elements; ++i) v.elements.push_back(convert(r->element[i]));
      break;
    default:
      break;
  }
  return v;
}

std::string sha1_hex(const std::string& s) {
  unsigned char d[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  std::string out;
  char buf[3];
  for (unsigned char c : d) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

/// A Redis error reply: carried up so eval() can tell NOSCRIPT from a real error.
struct ReplyError {
  std::string message;
};

}  // namespace

RedisClient::RedisClient(RedisOptions options) : o_(std::move(options)) {
  static const std::regex url(R"(redis://([A-Za-z0-9._-]+|\[[0-9a-fA-F:]+\])(?::(\d{1,5}))?(?:/(\d{1,2}))?/?)");
  std::smatch m;
  AEGIS_CHECK(std::regex_match(o_.url_, m, url), InvalidArgument,
              "Redis URL must look like redis://host[:port][/db], got '" << o_.url_ << "'");
  host_ = m[1].str();
  if (host_.front() == '[') host_ = host_.substr(1, host_.size() - 2);
  if (m[2].matched) port_ = std::stoi(m[2].str());
  if (m[3].matched) db_ = std::stoi(m[3].str());
  AEGIS_CHECK(port_ > 0 && port_ < 65536, InvalidArgument, "Redis port out of range in '" << o_.url_ << "'");
  AEGIS_CHECK(o_.timeout_s_ > 0, InvalidArgument, "Redis timeout must be > 0");
}

RedisClient::~RedisClient() = default;

std::string RedisClient::describe() const { return "Redis at " + host_ + ":" + std::to_string(port_); }

std::unique_ptr<RedisClient::Conn> RedisClient::connect() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    AEGIS_CHECK(std::chrono::steady_clock::now() >= down_until_, Io,
                describe() << " is unavailable (the last connection attempt failed)");
  }
  auto c = std::make_unique<Conn>();
  c->ctx = redisConnectWithTimeout(host_.c_str(), port_, to_timeval(o_.timeout_s_));
  auto fail = [&](const std::string& why) {
    std::lock_guard<std::mutex> lock(mu_);
    down_until_ = std::chrono::steady_clock::now() +
                  std::chrono::microseconds(static_cast<int64_t>(o_.retry_after_s_ * 1e6));
    AEGIS_FAIL(Io, describe() << " is unavailable: " << why);
  };
  if (c->ctx == nullptr) fail("out of memory");
  if (c->ctx->err) fail(c->ctx->errstr);
  redisSetTimeout(c->ctx, to_timeval(o_.timeout_s_));
  if (db_ != 0) {
    auto* r = static_cast<redisReply*>(redisCommand(c->ctx, "SELECT %d", db_));
    const bool ok = r && r->type != REDIS_REPLY_ERROR;
    if (r) freeReplyObject(r);
    if (!ok) fail("cannot select database " + std::to_string(db_));
  }
  return c;
}

void RedisClient::release(std::unique_ptr<Conn> c) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(c));
}

namespace {
/// A dropped connection (I/O error), as opposed to Redis being unreachable.
struct Dropped {
  std::string why;
};
}  // namespace

std::vector<RedisValue> RedisClient::run(const std::vector<std::vector<std::string>>& commands) {
  // A pooled connection may have died since its last use (Redis restarted,
  // an idle timeout): then the commands go once more on a fresh connection.
  // A fresh connection that fails means Redis is not there.
  for (int attempt = 0;; ++attempt) {
    bool pooled = false;
    std::unique_ptr<Conn> c;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (attempt == 0 && !idle_.empty()) {
        c = std::move(idle_.back());
        idle_.pop_back();
        pooled = true;
      }
    }
    if (!c) c = connect();
    try {
      for (const auto& args : commands) {
        std::vector<const char*> argv;
        std::vector<size_t> lens;
        for (const auto& a : args) {
          argv.push_back(a.data());
          lens.push_back(a.size());
        }
        if (redisAppendCommandArgv(c->ctx, int(argv.size()), argv.data(), lens.data()) != REDIS_OK)
          throw Dropped{c->ctx->errstr};
      }
      std::vector<RedisValue> out;
      std::string error;
      for (size_t i = 0; i < commands.size(); ++i) {
        void* raw = nullptr;
        if (redisGetReply(c->ctx, &raw) != REDIS_OK || raw == nullptr)
          throw Dropped{c->ctx->err ? c->ctx->errstr : "no reply"};
        auto* r = static_cast<redisReply*>(raw);
        if (r->type == REDIS_REPLY_ERROR && error.empty()) error.assign(r->str, r->len);
        out.push_back(convert(r));
        freeReplyObject(r);
      }
      release(std::move(c));  // every reply read: the connection is clean
      if (!error.empty()) throw ReplyError{error};
      return out;
    } catch (const Dropped& d) {
      // `c` is freed here: a broken context is never reused.
      if (pooled) continue;
      AEGIS_FAIL(Io, describe() << " is unavailable: " << d.why);
    }
  }
}

std::vector<RedisValue> RedisClient::pipeline(const std::vector<std::vector<std::string>>& commands) {
  try {
    return run(commands);
  } catch (const ReplyError& e) {
    AEGIS_FAIL(Internal, describe() << " refused a command: " << e.message);
  }
}

RedisValue RedisClient::command(const std::vector<std::string>& args) { return pipeline({args})[0]; }

RedisValue RedisClient::eval(const std::string& script, const std::vector<std::string>& keys,
                             const std::vector<std::string>& args) {
  std::string sha;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sha_.find(script);
    if (it == sha_.end()) it = sha_.emplace(script, sha1_hex(script)).first;
    sha = it->second;
  }
  auto call = [&](const std::string& verb, const std::string& body) {
    std::vector<std::string> a = {verb, body, std::to_string(keys.size())};
    a.insert(a.end(), keys.begin(), keys.end());
    a.insert(a.end(), args.begin(), args.end());
    return run({a})[0];
  };
  try {
    try {
      return call("EVALSHA", sha);
    } catch (const ReplyError& e) {
      if (e.message.rfind("NOSCRIPT", 0) != 0) throw;
      return call("EVAL", script);  // Redis restarted or never saw it: EVAL caches it again
    }
  } catch (const ReplyError& e) {
    AEGIS_FAIL(Internal, describe() << " refused a script: " << e.message);
  }
}

bool RedisClient::ping() {
  try {
    return command({"PING"}).str == "PONG";
  } catch (const Error&) {
    return false;
  }
}

}  // namespace aegis::serve
