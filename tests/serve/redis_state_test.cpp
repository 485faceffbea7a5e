// The Redis backend of the gateway's state: unit checks of the store and the
// response state against a real redis-server started on a free port, then two
// gateway replicas sharing it (one rate limit, one quarantine list, one rule
// window, one review queue), and Redis going away and coming back.

#include "aegis/serve/redis_state.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "gateway_harness.h"

namespace aegis::serve {
namespace {

using testing_gateway::Harness;
using testing_gateway::MaxValueDetector;
using nlohmann::json;

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  close(fd);
  return ntohs(a.sin_port);
}

bool have_redis_server() {
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"})
    if (std::filesystem::exists(p)) return true;
  return false;
}

/// A redis-server child process on a free loopback port, without persistence.
class RedisServer {
 public:
  RedisServer() : port_(free_port()) { start(); }
  ~RedisServer() { stop(); }
  void start() {
    pid_ = fork();
    if (pid_ == 0) {
      const std::string port = std::to_string(port_);
      execlp("redis-server", "redis-server", "--port", port.c_str(), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--loglevel", "warning", static_cast<char*>(nullptr));
      _exit(127);
    }
    RedisClient probe(RedisOptions(url()).retry_after(0.0));
    for (int i = 0; i < 100 && !probe.ping(); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_;
  pid_t pid_ = -1;
};

// redis-server is a dependency like the others (scripts/setup installs it):
// without it these tests fail rather than pass silently.
#define NEED_REDIS() \
  ASSERT_TRUE(have_redis_server()) << "redis-server is not installed: run scripts/setup"

TEST(RedisState, RateLimitsMatchTheInProcessStoreDecisionForDecision) {
  NEED_REDIS();
  RedisServer server;
  auto redis = std::make_shared<RedisClient>(RedisOptions(server.url()));
  RedisRateLimitStore shared(redis, "t1:");
  InProcessRateLimitStore local;
  const RateLimit lim{2.0, 3.0};
  double now = 1.7e9;
  for (int i = 0; i < 40; ++i) {
    const double cost = 1.0 + (i % 3 == 0);
    RateDecision a = shared.acquire("k|m", lim, cost, now), b = local.acquire("k|m", lim, cost, now);
    EXPECT_EQ(a.allowed, b.allowed) << "step " << i;
    EXPECT_NEAR(a.retry_after_s, b.retry_after_s, 1e-9) << "step " << i;
    now += 0.13 * (i % 5);
  }
  EXPECT_FALSE(shared.acquire("k|m", lim, 4.0, now).allowed);  // more than the burst: never
  EXPECT_TRUE(std::isinf(shared.acquire("k|m", lim, 4.0, now).retry_after_s));
  EXPECT_TRUE(shared.add_daily("q", 100, 5, 6));
  EXPECT_FALSE(shared.add_daily("q", 100, 2, 6));
  EXPECT_TRUE(shared.add_daily("q", 100, 1, 6));
  EXPECT_EQ(shared.daily_count("q", 100), 6);
  EXPECT_EQ(shared.daily_count("q", 101), 0);
  EXPECT_TRUE(shared.add_daily("q", 101, 6, 6));
}

TEST(RedisState, QuarantineThrottleWindowsAndReviewsAreShared) {
  NEED_REDIS();
  RedisServer server;
  RedisResponseState a(std::make_shared<RedisClient>(RedisOptions(server.url())), "t2:");
  RedisResponseState b(std::make_shared<RedisClient>(RedisOptions(server.url())), "t2:");
  RedisResponseState other(std::make_shared<RedisClient>(RedisOptions(server.url())), "elsewhere:");
  a.set_quarantined("key1", true);
  EXPECT_TRUE(b.quarantined("key1"));
  EXPECT_FALSE(other.quarantined("key1"));
  b.set_quarantined("key1", false);
  EXPECT_FALSE(a.quarantined("key1"));
  EXPECT_DOUBLE_EQ(a.throttle("k|m"), 1.0);
  a.set_throttle("k|m", 0.25);
  EXPECT_DOUBLE_EQ(b.throttle("k|m"), 0.25);
  EXPECT_EQ(a.add_review({{"reason", "detector"}}), 1);
  EXPECT_EQ(b.add_review({{"reason", "monitor"}}), 2);
  b.put_review(7, {{"id", 7}, {"reason", "restored"}});
  EXPECT_EQ(a.add_review({{"reason", "next"}}), 8);  // ids are never reused
  auto all = a.reviews();
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[2]["reason"], "monitor");
  EXPECT_EQ(all[8]["id"], 8);
  // One window, filled from both sides.
  EXPECT_EQ(a.push_window("k|m|0|", true, 3), -1);
  EXPECT_EQ(b.push_window("k|m|0|", false, 3), -1);
  EXPECT_EQ(a.push_window("k|m|0|", true, 3), 2);
  EXPECT_EQ(b.push_window("k|m|0|", false, 3), 1);  // the oldest fell out
  EXPECT_EQ(a.push_window("k|m|1|", true, 1), 1);
  b.clear_windows("k|m|0|");
  EXPECT_EQ(a.push_window("k|m|0|", true, 3), -1);
  EXPECT_EQ(a.push_window("k|m|1|", false, 1), 0);  // untouched by the other window's clearing
  a.push_window("k*[x]|m|0|", true, 5);
  b.clear_windows("k*[x]|");  // glob characters in names are matched literally
  EXPECT_EQ(a.push_window("k*[x]|m|0|", true, 2), -1);
}

TEST(RedisState, UnreachableRedisThrowsIoAndReconnects) {
  NEED_REDIS();
  RedisServer server;
  auto redis = std::make_shared<RedisClient>(RedisOptions(server.url()).timeout(0.2).retry_after(0.0));
  RedisResponseState s(redis, "t3:");
  s.set_quarantined("k", true);
  server.stop();
  EXPECT_EQ(testing::error_kind_of([&] { s.quarantined("k"); }), ErrorKind::Io);
  EXPECT_EQ(testing::error_kind_of([&] { s.quarantined("k"); }), ErrorKind::Io);
  FailOpenResponseState open(std::make_shared<RedisResponseState>(redis, "t3:"), nullptr);
  EXPECT_FALSE(open.quarantined("k"));
  server.start();  // no persistence: the restarted Redis is empty
  EXPECT_FALSE(s.quarantined("k"));
  EXPECT_EQ(testing::error_kind_of([] { RedisClient(RedisOptions("http://x")); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(testing::error_kind_of([] { RedisClient(RedisOptions("redis://h:99999")); }), ErrorKind::InvalidArgument);
}

/// Two replicas on one Redis, with one key store (as replicas reading the same keys file).
struct Replicas {
  Harness a, b;
  explicit Replicas(const std::string& url, const std::function<void(ModelConfig&)>& edit,
                    const std::function<void(ServerConfig&)>& server_edit = {}) {
    b.keys = a.keys;
    for (Harness* h : {&a, &b}) {
      ServeConfig c = h->config(edit);
      c.server.state_path = url;
      c.server.state_prefix = "gw:";
      c.server.state_timeout_s = 0.2;
      if (server_edit) server_edit(c.server);
      h->start(c);
    }
  }
  Harness& at(int i) { return i % 2 ? b : a; }
};

const std::string kOne = Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}});
const std::string kFlagged = Harness::body({{0.1f, 0.2f, 1.0f, 0.4f}});  // MaxValueDetector(0.95) flags it

TEST(RedisState, TwoReplicasEnforceOneRateLimit) {
  NEED_REDIS();
  RedisServer server;
  Replicas r(server.url(), [](ModelConfig& m) { m.rate.requests = RateLimit{1.0, 4.0}; });
  int ok = 0;
  for (int i = 0; i < 8; ++i) ok += r.at(i).infer(r.a.predict, kOne)->status == 200;
  EXPECT_EQ(ok, 4);  // the burst of 4 in total, not 4 per replica
  auto refused = r.b.infer(r.a.predict, kOne);
  EXPECT_EQ(refused->status, 429);
  r.a.clock->advance(2.0);
  r.b.clock->advance(2.0);
  EXPECT_EQ(r.b.infer(r.a.predict, kOne)->status, 200);
  EXPECT_EQ(r.a.infer(r.a.predict, kOne)->status, 200);
  EXPECT_EQ(r.a.infer(r.a.predict, kOne)->status, 429);
}

TEST(RedisState, AQuarantineThroughOneReplicaIsEnforcedByTheOtherAndWindowsAreShared) {
  NEED_REDIS();
  RedisServer server;
  Replicas r(server.url(), [](ModelConfig& m) {
    m.detection_policy = DetectionPolicy::Flag;
    m.detector_factory = [](ClassifierPtr) { return std::make_unique<MaxValueDetector>(0.95); };
    // One alert in a window of 4 quarantines the key.
    m.rules.push_back(ResponseRule{"detector", 4, 0.2, ResponseAction::Quarantine, 0.1});
  });
  // Three clean requests and one flagged one, spread over both replicas: no
  // replica alone has a full window, the shared one is.
  EXPECT_EQ(r.a.infer(r.a.predict, kOne)->status, 200);
  EXPECT_EQ(r.b.infer(r.a.predict, kOne)->status, 200);
  EXPECT_EQ(r.a.infer(r.a.predict, kOne)->status, 200);
  auto flagged = r.b.infer(r.a.predict, kFlagged);
  EXPECT_EQ(flagged->get_header_value("X-Aegis-Flagged"), "detector");
  auto next = r.a.infer(r.a.predict, kOne);
  EXPECT_EQ(next->status, 403);
  EXPECT_NE(next->body.find("quarantined"), std::string::npos) << next->body;
  // The flagged request is in the queue both replicas show.
  for (Harness* h : {&r.a, &r.b}) {
    auto review = h->client->Get("/v1/review", Harness::auth(r.a.admin));
    ASSERT_EQ(review->status, 200);
    EXPECT_EQ(json::parse(review->body)["items"].size(), 1u);
  }
  // Each replica keeps its own audit log, with its own requests.
  EXPECT_FALSE(testing_gateway::audit_rows(r.a.dir.file("audit.db"), "status = 403").empty());
  EXPECT_TRUE(testing_gateway::audit_rows(r.b.dir.file("audit.db"), "status = 403").empty());
}

// A Square-style probe (the same point with tiny changes, as Square's queries
// are) spread over both replicas is flagged at the same query as against one
// replica: each replica scores against the queries the other saw.
TEST(RedisState, AProbeSpreadOverReplicasIsFlaggedAsFastAsAgainstOne) {
  NEED_REDIS();
  RedisServer server;
  auto monitored = [](ModelConfig& m) {
    m.monitor = true;
    m.monitor_options = MonitorOptions().k(3).history(50).knn_threshold(0.05).prada(false);
  };
  auto first_flag = [](const std::function<Harness&(int)>& at, const std::string& key) {
    for (int sent = 1; sent <= 12; ++sent) {
      const float d = 0.001f * float(sent);
      auto r = at(sent).infer(key, Harness::body({{0.5f + d, 0.5f, 0.5f - d, 0.5f}}));
      if (r->has_header("X-Aegis-Flagged")) return sent;
    }
    return -1;
  };
  Harness single;
  single.start(single.config(monitored));
  const int alone = first_flag([&](int) -> Harness& { return single; }, single.predict);
  EXPECT_EQ(alone, 4);  // k = 3 neighbours before the 4th query
  Replicas r(server.url(), monitored);
  EXPECT_EQ(first_flag([&](int i) -> Harness& { return r.at(i); }, r.a.predict), alone);
}

TEST(RedisState, RedisDownFailsClosedOrOpenAsConfiguredAndRecovers) {
  NEED_REDIS();
  RedisServer server;
  auto limited = [](ModelConfig& m) { m.rate.requests = RateLimit{100.0, 100.0}; };
  Replicas closed(server.url(), limited);
  Replicas open(server.url(), limited, [](ServerConfig& s) { s.state_fail_open = true; });
  EXPECT_EQ(closed.a.infer(closed.a.predict, kOne)->status, 200);
  server.stop();
  auto down = closed.a.infer(closed.a.predict, kOne);
  EXPECT_EQ(down->status, 503);
  EXPECT_NE(down->body.find("Redis"), std::string::npos) << down->body;
  auto through = open.a.infer(open.a.predict, kOne);
  EXPECT_EQ(through->status, 200);
  EXPECT_NE(open.a.gateway->metrics().render().find("action=\"fail_open\"}"), std::string::npos);
  server.start();
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // past the client's fail-fast pause
  EXPECT_EQ(closed.a.infer(closed.a.predict, kOne)->status, 200);
  EXPECT_EQ(closed.b.infer(closed.a.predict, kOne)->status, 200);
}

}  // namespace
}  // namespace aegis::serve
