// End-to-end tests of the gateway over loopback: a real GatewayServer on an
// ephemeral port, real HTTP clients. No sleeps and no timing: rate limits run
// on a ManualClock, batching waits for a full batch, concurrency is joined.
#include "aegis/serve/gateway.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <torch/torch.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/attacks/poisoning/poison.h"
#include "aegis/defenses/detectors/detector.h"
#include "aegis/defenses/detectors/strip_detector.h"
#include "aegis/integrity/model_signing.h"
#include "aegis/serve/internal/httplib.h"
#include "aegis/serve/remote_classifier.h"
#include "aegis/serve/server.h"
#include "gateway_harness.h"
#include "support/test_support.h"

namespace aegis::serve {
namespace {

using nlohmann::json;

using namespace testing_gateway;

TEST(Gateway, HealthMetadataAndCorrectPredictions) {
  Harness h;
  h.start(h.config());
  auto live = h.client->Get("/v2/health/live");
  ASSERT_TRUE(live);
  EXPECT_EQ(live->status, 200);
  EXPECT_EQ(h.client->Get("/v2/models/m")->status, 401);
  auto meta = h.client->Get("/v2/models/m", Harness::auth(h.predict));
  ASSERT_EQ(meta->status, 200);
  EXPECT_EQ(json::parse(meta->body)["inputs"][0]["shape"], json({-1, 4}));
  EXPECT_EQ(h.client->Get("/v2/models/m/ready", Harness::auth(h.predict))->status, 200);

  std::vector<std::vector<float>> rows = {{0.9f, 0.1f, 0.2f, 0.3f}, {0.1f, 0.2f, 0.8f, 0.0f}};
  auto r = h.infer(h.predict, Harness::body(rows));
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["model_name"], "m");
  EXPECT_EQ(j["id"], "t");
  json scores;
  for (const auto& o : j["outputs"]) {
    if (o["name"] == "label") EXPECT_EQ(o["data"], json({0, 2}));
    if (o["name"] == "scores") scores = o["data"];
  }
  auto local = ScriptClassifier::load(h.dir.file("m.pt"));
  torch::Tensor want =
      local->probabilities(torch::tensor({0.9f, 0.1f, 0.2f, 0.3f, 0.1f, 0.2f, 0.8f, 0.0f}).reshape({2, 4}));
  ASSERT_EQ(scores.size(), 6u);
  for (int i = 0; i < 6; ++i) EXPECT_NEAR(scores[i].get<double>(), want.flatten()[i].item<double>(), 1e-5);
}

TEST(Gateway, AuthenticationAndAuthorisationAreEnforcedAndLogged) {
  Harness h;
  h.start(h.config());
  const std::string b = Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}});
  auto none = h.client->Post("/v2/models/m/infer", b, "application/json");
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(reason(none), "missing_key");
  std::string wrong = h.predict;
  wrong.back() = wrong.back() == 'a' ? 'b' : 'a';
  EXPECT_EQ(reason(h.infer(wrong, b)), "unknown_key");
  EXPECT_EQ(h.infer(h.revoked, b)->status, 401);
  EXPECT_EQ(reason(h.infer(h.revoked, b)), "revoked_key");
  EXPECT_EQ(h.infer(h.other_model, b)->status, 403);
  EXPECT_EQ(reason(h.infer(h.other_model, b)), "model_not_allowed");
  EXPECT_EQ(reason(h.infer(h.auditor, b)), "role_not_allowed");
  EXPECT_EQ(h.infer(h.admin, b, "nope")->status,
            404);  // after authentication only
  EXPECT_EQ(h.infer(h.predict, b, "nope")->status,
            403);  // not on its list, existing or not
  auto x = h.client->Post("/v2/models/m/infer", {{"X-API-Key", h.admin}}, b, "application/json");
  EXPECT_EQ(x->status, 200);
  EXPECT_EQ(h.gateway->metrics().rejections("unknown_key"), 1);
  h.server->stop();
  // Every decision is in the audit log; no secret part of any key is.
  std::ifstream in(h.dir.file("audit.db"), std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  for (const auto& k : {h.predict, h.admin, h.auditor, h.revoked, wrong})
    EXPECT_EQ(ss.str().find(k.substr(19)), std::string::npos);
  AuditVerification v = verify_audit_log(h.dir.file("audit.db"));
  EXPECT_TRUE(v.ok) << v.problem;
  EXPECT_GE(v.entries, 8);
}

TEST(Gateway, BadInputsGet4xxWithAReasonAndNeverCrash) {
  Harness h;
  h.start(h.config());
  auto bad = [&](const std::string& b, int status, const std::string& why) {
    auto r = h.infer(h.predict, b);
    ASSERT_TRUE(r) << why;
    EXPECT_EQ(r->status, status) << why << ": " << r->body;
    EXPECT_EQ(reason(r), why) << r->body;
  };
  bad("{not json", 400, "bad_request");
  bad(Harness::body({{0.1f, 0.2f, 0.3f}}), 400, "bad_shape");
  bad(Harness::body({{0.1f, 0.2f, 1.5f, 0.3f}}), 400, "out_of_range");
  bad(Harness::body({{-0.5f, 0.2f, 0.5f, 0.3f}}), 400, "out_of_range");
  bad(R"({"inputs":[{"name":"x","shape":[1,4],"datatype":"FP64","data":[1e39,0,0,0]}]})", 400, "non_finite");
  bad(R"({"inputs":[{"name":"x","shape":[0,4],"datatype":"FP32","data":[]}]})", 400, "bad_shape");
  bad(Harness::body(std::vector<std::vector<float>>(17, {0.1f, 0.1f, 0.1f, 0.1f})), 413, "batch_too_large");
  bad(R"({"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[0,0,0,0]}],"outputs":[{"name":"w"}]})", 400,
      "bad_request");
  auto big = h.infer(h.predict, std::string(70 * 1024, ' '));
  EXPECT_EQ(big->status, 413);
  // Still serving after all of that; integer datatypes work too.
  EXPECT_EQ(
      h.infer(h.predict, R"({"inputs":[{"name":"x","shape":[1,4],"datatype":"INT32","data":[0,1,0,0]}]})")->status,
      200);
  EXPECT_EQ(h.client->Get("/nope", Harness::auth(h.admin))->status, 404);
}

TEST(Gateway, RateLimitsAndDailyQuotaAnswer429WithRetryAfter) {
  Harness h;
  h.start(h.config([](ModelConfig& m) {
    m.rate.requests = RateLimit{1.0, 2.0};
    m.rate.daily_samples = 6;
  }));
  const std::string one = Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}});
  EXPECT_EQ(h.infer(h.predict, one)->status, 200);
  EXPECT_EQ(h.infer(h.predict, one)->status, 200);
  auto r = h.infer(h.predict, one);
  EXPECT_EQ(r->status, 429);
  EXPECT_EQ(reason(r), "rate_limited");
  EXPECT_EQ(r->get_header_value("Retry-After"), "1");
  EXPECT_EQ(h.infer(h.admin, one)->status,
            200);  // another key has its own bucket
  h.clock->advance(1.0);
  EXPECT_EQ(h.infer(h.predict, one)->status, 200);
  h.clock->advance(10.0);
  // 3 samples used; 4 more would pass the quota of 6.
  auto q = h.infer(h.predict, Harness::body(std::vector<std::vector<float>>(4, {0.1f, 0.1f, 0.1f, 0.1f})));
  EXPECT_EQ(q->status, 429);
  EXPECT_EQ(reason(q), "quota_exceeded");
  EXPECT_GE(std::stoll(q->get_header_value("Retry-After")), 1);
  EXPECT_EQ(h.infer(h.predict, Harness::body(std::vector<std::vector<float>>(3, {0.1f, 0.1f, 0.1f, 0.1f})))->status,
            200);
  h.clock->advance(86400.0);
  EXPECT_EQ(h.infer(h.predict, one)->status, 200);
}

TEST(Gateway, DetectorPoliciesRejectOrFlagIntoTheReviewQueue) {
  for (DetectionPolicy policy : {DetectionPolicy::Reject, DetectionPolicy::Flag, DetectionPolicy::Log}) {
    Harness h;
    h.start(h.config([&](ModelConfig& m) {
      m.detection_policy = policy;
      m.detector_factory = [](ClassifierPtr) { return std::make_unique<MaxValueDetector>(0.95); };
    }));
    EXPECT_EQ(h.infer(h.predict, Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}}))->status, 200);
    auto r = h.infer(h.predict, Harness::body({{0.1f, 0.2f, 1.0f, 0.4f}}));
    auto review = h.client->Get("/v1/review", Harness::auth(h.admin));
    ASSERT_EQ(review->status, 200);
    json items = json::parse(review->body)["items"];
    EXPECT_EQ(h.gateway->metrics().alerts("m", "detector"), 1);
    if (policy == DetectionPolicy::Reject) {
      EXPECT_EQ(r->status, 422);
      EXPECT_EQ(reason(r), "adversarial_input");
      EXPECT_TRUE(items.empty());
    } else if (policy == DetectionPolicy::Flag) {
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->get_header_value("X-Aegis-Flagged"), "detector");
      ASSERT_EQ(items.size(), 1u);
      EXPECT_EQ(items[0]["reason"], "detector");
      const std::string id = std::to_string(items[0]["id"].get<int64_t>());
      EXPECT_EQ(h.client->Get("/v1/review", Harness::auth(h.predict))->status, 403);
      EXPECT_EQ(h.client
                    ->Post(("/v1/review/" + id).c_str(), Harness::auth(h.admin), R"({"decision":"maybe"})",
                           "application/json")
                    ->status,
                400);
      EXPECT_EQ(h.client
                    ->Post(("/v1/review/" + id).c_str(), Harness::auth(h.admin), R"({"decision":"confirm"})",
                           "application/json")
                    ->status,
                200);
      EXPECT_TRUE(json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"].empty());
    } else {
      EXPECT_EQ(r->status, 200);
      EXPECT_FALSE(r->has_header("X-Aegis-Flagged"));
      EXPECT_TRUE(items.empty());
    }
  }
}

// STRIP as the gateway's detection filter, loaded from its file the way
// `aegis serve` loads it: a backdoor-triggered request goes to the review
// queue, a clean one is answered unmarked.
TEST(Gateway, StripFilterSendsTriggeredRequestsToTheReviewQueue) {
  Harness h;
  auto model = testing::tiny_backdoor_model(true);
  model->save(h.dir.file("backdoored.pt"));
  Dataset clean = testing::make_tiny_backdoor_data(200, 11);
  auto det = STRIPDetector::fit(model, clean.x, STRIPOptions().overlays(32).pool(32));
  det->calibrate(clean.x.slice(0, 32, 200), 0.01);
  save_detector(*det, h.dir.file("backdoored.pt.detector.json"));
  h.start(h.config([&](ModelConfig& m) {
    m.path = h.dir.file("backdoored.pt");
    m.detector_path = h.dir.file("backdoored.pt.detector.json");
    m.fallback_path.clear();
    m.detection_policy = DetectionPolicy::Flag;
  }));
  auto image_body = [](const torch::Tensor& x) {
    torch::Tensor f = x.contiguous();
    std::vector<float> data(f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
    return json{{"inputs", {{{"name", "x"}, {"shape", {1, 1, 12, 12}}, {"datatype", "FP32"}, {"data", data}}}}}
        .dump();
  };
  Dataset fresh = testing::make_tiny_backdoor_data(10, 12);
  const int64_t i = (fresh.y != testing::kTinyBackdoorTarget).nonzero()[0].item<int64_t>();
  auto ok = h.infer(h.predict, image_body(fresh.x[i]));
  ASSERT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(ok->get_header_value("X-Aegis-Flagged"), "");
  Trigger t = trigger_from_record(testing::tiny_backdoor_record()).first;
  auto hit = h.infer(h.predict, image_body(t.apply(fresh.x.slice(0, i, i + 1))[0]));
  ASSERT_EQ(hit->status, 200) << hit->body;
  EXPECT_EQ(hit->get_header_value("X-Aegis-Flagged"), "detector");
  EXPECT_EQ(h.gateway->metrics().alerts("m", "detector"), 1);
  auto review = h.client->Get("/v1/review", Harness::auth(h.admin));
  ASSERT_EQ(review->status, 200);
  json items = json::parse(review->body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["reason"], "detector");
}

TEST(Gateway, MonitorCatchesAProbeStreamAndTheRuleQuarantinesTheKey) {
  Harness h;
  h.start(h.config([](ModelConfig& m) {
    m.monitor = true;
    m.monitor_options = MonitorOptions().k(3).history(50).knn_threshold(0.05).prada(false);
    m.rules.push_back(ResponseRule{"monitor", 4, 0.2, ResponseAction::Quarantine, 0.1});
  }));
  // Benign: far-apart queries never alert.
  for (int i = 0; i < 6; ++i) {
    float v = 0.15f * i;
    EXPECT_EQ(h.infer(h.admin, Harness::body({{v, 0.9f - v, 0.5f, i % 2 ? 0.0f : 1.0f}}))->status, 200);
  }
  // The probe: the same point with tiny changes.
  int first_flag = -1, status = 200, sent = 0;
  while (status == 200 && sent < 20) {
    float d = 0.001f * sent;
    auto r = h.infer(h.predict, Harness::body({{0.5f + d, 0.5f, 0.5f - d, 0.5f}}));
    status = r->status;
    ++sent;
    if (first_flag < 0 && r->has_header("X-Aegis-Flagged")) first_flag = sent;
  }
  EXPECT_EQ(first_flag, 4);  // the 4th query has k = 3 neighbours
  EXPECT_EQ(status, 403);    // 1 alert in the window of 4 is over 0.2: quarantined
  EXPECT_EQ(sent, 5);
  EXPECT_EQ(reason(h.infer(h.predict, Harness::body({{0.1f, 0.1f, 0.1f, 0.1f}}))), "quarantined");
  EXPECT_EQ(h.gateway->metrics().alerts("m", "monitor-knn"), 1);
  const std::string id = key_id_of(h.predict);
  EXPECT_EQ(
      h.client->Post(("/v1/keys/" + id + "/release").c_str(), Harness::auth(h.auditor), "", "application/json")->status,
      403);
  EXPECT_EQ(
      h.client->Post(("/v1/keys/" + id + "/release").c_str(), Harness::auth(h.admin), "", "application/json")->status,
      200);
  EXPECT_EQ(h.infer(h.predict, Harness::body({{0.9f, 0.0f, 0.2f, 0.7f}}))->status, 200);
  h.server->stop();
  // The quarantine and the release are in the (intact) audit log.
  std::vector<std::string> actions;
  for (const auto& row : audit_rows(h.dir.file("audit.db"), "kind='response'")) actions.push_back(row["decision"]);
  EXPECT_EQ(actions, (std::vector<std::string>{"quarantine", "release"}));
  EXPECT_TRUE(verify_audit_log(h.dir.file("audit.db")).ok);
}

TEST(Gateway, FallbackRuleSwitchesModelAndThrottleRuleSlowsTheKey) {
  Harness h;
  h.start(h.config([](ModelConfig& m) {
    m.detection_policy = DetectionPolicy::Log;
    m.detector_factory = [](ClassifierPtr) { return std::make_unique<MaxValueDetector>(0.95); };
    m.rules.push_back(ResponseRule{"detector", 1, 0.0, ResponseAction::Fallback, 0.1});
    m.rules.push_back(ResponseRule{"detector", 1, 0.0, ResponseAction::Throttle, 0.5});
    m.rate.requests = RateLimit{1.0, 1.0};
  }));
  const std::string v1 = h.gateway->model("m").current()->version;
  auto r = h.infer(h.predict, Harness::body({{1.0f, 0.2f, 0.3f, 0.4f}}));
  ASSERT_EQ(r->status, 200);
  // The rules run before inference: the alerting request already gets the
  // fallback.
  EXPECT_NE(json::parse(r->body)["model_version"], v1);
  EXPECT_TRUE(h.gateway->model("m").using_fallback());
  EXPECT_DOUBLE_EQ(h.gateway->responses().throttle_factor(key_id_of(h.predict), "m"), 0.5);
  // At 1/s a request per second passes; at the throttled 0.5/s the second one
  // does not.
  h.clock->advance(1.0);
  EXPECT_EQ(h.infer(h.predict, Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}}))->status, 200);
  h.clock->advance(1.0);
  EXPECT_EQ(h.infer(h.predict, Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}}))->status, 429);
  EXPECT_EQ(h.infer(h.admin, Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}}))->status,
            200);  // not throttled
  EXPECT_EQ(
      h.client->Post("/v1/models/m/fallback", Harness::auth(h.admin), R"({"on":false})", "application/json")->status,
      200);
  EXPECT_FALSE(h.gateway->model("m").using_fallback());
}

TEST(Gateway, OutputHardeningModesReachTheClient) {
  Harness h;
  h.start(h.config([](ModelConfig& m) { m.output.mode(OutputMode::TopK).top_k(2); }));
  auto r = h.infer(h.predict, Harness::body({{0.9f, 0.1f, 0.2f, 0.3f}}));
  json j = json::parse(r->body);
  std::set<std::string> names;
  for (const auto& o : j["outputs"]) names.insert(o["name"]);
  EXPECT_EQ(names, (std::set<std::string>{"label", "topk_scores", "topk_classes"}));
  EXPECT_EQ(j["parameters"]["output"]["mode"], "topk");
  for (const auto& o : j["outputs"])
    if (o["name"] == "topk_classes") EXPECT_EQ(o["shape"], json({1, 2}));
}

TEST(Gateway, RemoteClassifierQueriesTheServedModelThroughItsKey) {
  Harness h;
  h.start(h.config());
  auto remote = RemoteClassifier::connect(RemoteOptions(h.url(), "m").api_key(h.predict).batch_size(3));
  EXPECT_FALSE(remote->has_gradients());
  EXPECT_EQ(remote->meta().input_shape, std::vector<int64_t>{4});
  EXPECT_EQ(remote->meta().num_classes, 3);
  torch::Tensor x = torch::rand({7, 4});
  auto local = ScriptClassifier::load(h.dir.file("m.pt"));
  EXPECT_TRUE(torch::allclose(remote->probabilities(x), local->probabilities(x), 1e-4, 1e-5));
  EXPECT_TRUE(torch::equal(remote->predict(x), local->predict(x)));
  EXPECT_EQ(remote->queries(), 14);
  EXPECT_EQ(remote->requests(), 6);  // 3 + 3 + 1, twice
  try {
    remote->loss_gradient(x, torch::zeros({7}, torch::kLong));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  }
  try {
    RemoteClassifier::connect(RemoteOptions(h.url(), "m").api_key(h.revoked));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unauthenticated);
  }
  try {
    remote->probabilities(torch::full({1, 4}, 2.0));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("must lie in"), std::string::npos);
  }
}

TEST(Gateway, CliAttacksAServedModelThroughItsUrl) {
  Harness h;
  h.start(h.config());
  torch::manual_seed(3);
  save_npy(torch::rand({6, 4}) * 0.5 + 0.25, h.dir.file("x.npy"));
  save_npy(torch::tensor({0, 1, 2, 0, 1, 2}, torch::kLong), h.dir.file("y.npy"));
  { std::ofstream(h.dir.file("key.txt")) << h.predict << "\n"; }
  const std::string common = " --data " + h.dir.file("x.npy") + " --labels " + h.dir.file("y.npy") +
                             " --attack square --eps 0.3 --param queries=100 --grid 0 --json --out " +
                             h.dir.file("attack");
  auto ok =
      testing::run_aegis("attack --model " + h.url() + "/v2/models/m --api-key-file " + h.dir.file("key.txt") + common);
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  auto j = json::parse(ok.out);
  EXPECT_GT(j["result"]["queries"].get<int64_t>(), 6) << ok.out;
  EXPECT_EQ(j["model"]["url"], h.url() + "/v2/models/m");  // every sample sent through the API was counted
  EXPECT_TRUE(std::filesystem::exists(h.dir.file("attack/x_adv.npy")));
  // No key, a revoked key, a URL without a model: clear one-line errors.
  auto none = testing::run_aegis("attack --model " + h.url() + "/v2/models/m" + common);
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.err.find("API key"), std::string::npos) << none.err;
  { std::ofstream(h.dir.file("revoked.txt")) << h.revoked << "\n"; }
  auto revoked = testing::run_aegis("attack --model " + h.url() + "/v2/models/m --api-key-file " +
                                    h.dir.file("revoked.txt") + common);
  EXPECT_EQ(revoked.exit_code, 1) << revoked.err;
  EXPECT_NE(revoked.err.find("revoked"), std::string::npos) << revoked.err;
  auto bad_url =
      testing::run_aegis("attack --model " + h.url() + "/v2/oops --api-key-file " + h.dir.file("key.txt") + common);
  EXPECT_EQ(bad_url.exit_code, 2);
  EXPECT_NE(bad_url.err.find("/v2/models/NAME"), std::string::npos) << bad_url.err;
}

TEST(Gateway, LabelOnlyEndpointGivesADecisionOnlyRemote) {
  Harness h;
  h.start(h.config([](ModelConfig& m) { m.output.mode(OutputMode::Label); }));
  auto remote = RemoteClassifier::connect(RemoteOptions(h.url(), "m").api_key(h.predict));
  EXPECT_TRUE(remote->label_only());
  torch::Tensor x = torch::rand({5, 4});
  auto local = ScriptClassifier::load(h.dir.file("m.pt"));
  EXPECT_TRUE(torch::equal(remote->predict(x), local->predict(x)));
}

TEST(Gateway, ConcurrentClientsAreCoalescedIntoOneBatch) {
  Harness h;
  constexpr int kClients = 8;
  // A long delay: the batch is released by reaching max_batch, never by time.
  h.start(h.config([](ModelConfig& m) { m.batching = BatchingOptions{true, kClients, 600000.0}; }));
  auto local = ScriptClassifier::load(h.dir.file("m.pt"));
  std::vector<std::thread> threads;
  std::vector<int> status(kClients, 0);
  std::vector<int64_t> label(kClients, -1);
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", h.server->port());
      c.set_read_timeout(120, 0);
      float v = 0.1f * i;
      auto r = c.Post("/v2/models/m/infer", Harness::auth(h.predict), Harness::body({{v, 0.8f - v, 0.3f, 0.1f}}),
                      "application/json");
      status[i] = r ? r->status : -1;
      if (r && r->status == 200) {
        const json j = json::parse(r->body);  // kept alive while its outputs are read
        for (const auto& o : j["outputs"])
          if (o["name"] == "label") label[i] = o["data"][0];
      }
    });
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kClients; ++i) {
    EXPECT_EQ(status[i], 200);
    float v = 0.1f * i;
    EXPECT_EQ(label[i], local->predict(torch::tensor({{v, 0.8f - v, 0.3f, 0.1f}}))[0].item<int64_t>());
  }
  EXPECT_EQ(h.gateway->metrics().batches("m"), std::make_pair(int64_t{1}, int64_t{kClients}));
  EXPECT_EQ(h.gateway->metrics().largest_batch("m"), kClients);
}

TEST(Gateway, HotSwapAndRollbackUnderLoadFailNoRequest) {
  Harness h;
  h.start(h.config([](ModelConfig& m) { m.batching = BatchingOptions{true, 4, 1.0}; }));
  const std::string v1 = h.gateway->model("m").current()->version;
  auto m1 = ScriptClassifier::load(h.dir.file("m.pt"));
  auto m2 = ScriptClassifier::load(h.dir.file("m2.pt"));
  const std::vector<float> row = {0.9f, 0.1f, 0.2f, 0.3f};
  const int64_t l1 = m1->predict(torch::tensor(row).unsqueeze(0))[0].item<int64_t>();
  const int64_t l2 = m2->predict(torch::tensor(row).unsqueeze(0))[0].item<int64_t>();
  ASSERT_NE(l1, l2);
  constexpr int kClients = 6, kEach = 25;
  std::atomic<int> done{0}, failed{0}, mismatched{0};
  std::atomic<bool> saw_v2{false};
  std::string v2;
  std::vector<std::thread> threads;
  for (int i = 0; i < kClients; ++i) {
    threads.emplace_back([&] {
      httplib::Client c("127.0.0.1", h.server->port());
      c.set_read_timeout(120, 0);
      for (int k = 0; k < kEach; ++k) {
        auto r = c.Post("/v2/models/m/infer", Harness::auth(h.admin), Harness::body({row}), "application/json");
        if (!r || r->status != 200) {
          ++failed;
        } else {
          json j = json::parse(r->body);
          int64_t label = -1;
          for (const auto& o : j["outputs"])
            if (o["name"] == "label") label = o["data"][0];
          // Every answer comes whole from one version.
          if (j["model_version"] == v1 ? label != l1 : label != l2) ++mismatched;
          if (j["model_version"] != v1) saw_v2 = true;
        }
        ++done;
      }
    });
  }
  // Swap once some requests are through, roll back once v2 has answered.
  while (done.load() < kClients * 3) std::this_thread::yield();
  auto s = h.client->Post("/v1/models/m/swap", Harness::auth(h.admin), json{{"path", h.dir.file("m2.pt")}}.dump(),
                          "application/json");
  ASSERT_EQ(s->status, 200) << s->body;
  v2 = json::parse(s->body)["version"];
  while (!saw_v2.load() && done.load() < kClients * kEach) std::this_thread::yield();
  auto rb = h.client->Post("/v1/models/m/rollback", Harness::auth(h.admin), "", "application/json");
  ASSERT_EQ(rb->status, 200);
  EXPECT_EQ(json::parse(rb->body)["version"], v1);
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(mismatched.load(), 0);
  EXPECT_TRUE(saw_v2.load());
  EXPECT_EQ(h.gateway->model("m").current()->version, v1);
  EXPECT_EQ(h.client->Post("/v1/models/m/rollback", Harness::auth(h.admin), "", "application/json")->status, 404);
  // A swap to a model of another shape is refused and changes nothing.
  testing::make_linear(torch::ones({3, 5}), torch::zeros({3}))->save(h.dir.file("wide.pt"));
  auto w = h.client->Post("/v1/models/m/swap", Harness::auth(h.admin), json{{"path", h.dir.file("wide.pt")}}.dump(),
                          "application/json");
  EXPECT_EQ(w->status, 400);
  EXPECT_EQ(h.client
                ->Post("/v1/models/m/swap", Harness::auth(h.predict), json{{"path", h.dir.file("m2.pt")}}.dump(),
                       "application/json")
                ->status,
            403);
  EXPECT_EQ(h.gateway->model("m").current()->version, v1);
}

TEST(Gateway, ServesAForeignArchiveWithItsMetadataFromServeToml) {
  Harness h;
  // Saved as torch.jit.save does: no aegis.json inside.
  testing::make_linear(weights(3.0), torch::zeros({3}))->module().save(h.dir.file("foreign.pt"));
  const std::string model = "[[models]]\nname = \"m\"\npath = \"foreign.pt\"\n";
  auto config = [&](const std::string& extra) {
    ServeConfig c = parse_serve_config(model + extra + "[models.monitor]\nenabled = false\n", h.dir.path().string());
    c.server.port = 0;
    c.server.audit_path = h.dir.file("audit.db");
    return c;
  };
  try {  // without metadata the gateway does not start, and says what to give
    ServeConfig bare = config("");
    bare.server.audit_path.clear();
    Gateway g(bare, GatewayOptions{h.clock, nullptr, h.keys});
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("carries no aegis metadata"), std::string::npos) << e.what();
  }
  h.start(config("input_shape = [4]\nclass_names = [\"a\", \"b\", \"c\"]\n"));
  auto meta = h.client->Get("/v2/models/m", Harness::auth(h.predict));
  ASSERT_EQ(meta->status, 200);
  EXPECT_EQ(json::parse(meta->body)["inputs"][0]["shape"], json({-1, 4}));
  auto r = h.infer(h.predict, Harness::body({{0.9f, 0.1f, 0.2f, 0.3f}, {0.1f, 0.2f, 0.8f, 0.0f}}));
  ASSERT_EQ(r->status, 200) << r->body;
  for (const auto& o : json::parse(r->body)["outputs"])
    if (o["name"] == "label") {
      EXPECT_EQ(o["data"], json({0, 2}));
    }
  EXPECT_EQ(h.gateway->model("m").current()->classifier->meta().class_names[2], "c");
  // A swapped-in version of the same foreign model gets the same metadata.
  testing::make_linear(weights(-3.0), torch::zeros({3}))->module().save(h.dir.file("foreign2.pt"));
  auto s = h.client->Post("/v1/models/m/swap", Harness::auth(h.admin), json{{"path", h.dir.file("foreign2.pt")}}.dump(),
                          "application/json");
  EXPECT_EQ(s->status, 200) << s->body;
}

TEST(Gateway, VerificationHookRefusesUnverifiedModels) {
  Harness h;
  std::atomic<int> calls{0};
  ServeConfig c = h.config();
  c.server.verify_model = [&](const std::string& path) {
    ++calls;
    AEGIS_CHECK(path.find("untrusted") == std::string::npos, PermissionDenied,
                "signature of " << path << " does not verify");
  };
  h.start(c);
  EXPECT_EQ(calls.load(), 2);  // primary and fallback
  testing::make_linear(weights(2.0), torch::zeros({3}))->save(h.dir.file("untrusted.pt"));
  auto r = h.client->Post("/v1/models/m/swap", Harness::auth(h.admin),
                          json{{"path", h.dir.file("untrusted.pt")}}.dump(), "application/json");
  EXPECT_EQ(r->status, 403);
  EXPECT_NE(r->body.find("does not verify"), std::string::npos);
  EXPECT_EQ(h.gateway->model("m").current()->path, h.dir.file("m.pt"));
  ServeConfig bad = h.config([&](ModelConfig& m) { m.path = h.dir.file("untrusted.pt"); });
  bad.server.verify_model = c.server.verify_model;
  bad.server.audit_path.clear();
  try {
    Gateway g(bad, GatewayOptions{h.clock, nullptr, h.keys});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::PermissionDenied);
  }
}

TEST(Gateway, VerifyKeyServesOnlyModelsSignedWithThatKey) {
  Harness h;
  const std::string pub = generate_signing_key(h.dir.file("release.key"));
  generate_signing_key(h.dir.file("other.key"));
  for (const char* f : {"m.pt", "fallback.pt", "m2.pt"})
    sign_model(h.dir.file(f), SignOptions(h.dir.file("release.key")));
  // The TOML route: verify_key installs the integrity area's check.
  ServeConfig c = parse_serve_config(
      "[server]\nverify_key = \"release.key.pub\"\n[[models]]\nname = \"m\"\n"
      "path = \"m.pt\"\nfallback = \"fallback.pt\"\n[models.monitor]\nenabled = false\n",
      h.dir.path().string());
  EXPECT_EQ(c.server.verify_key, h.dir.file("release.key.pub"));
  c.server.port = 0;
  c.server.audit_path = h.dir.file("audit.db");
  h.start(c);
  auto swap = [&](const std::string& file) {
    return h.client->Post("/v1/models/m/swap", Harness::auth(h.admin), json{{"path", h.dir.file(file)}}.dump(),
                          "application/json");
  };
  // Unsigned, signed by another key, and altered after signing: all refused, the served model unchanged.
  testing::make_linear(weights(2.0), torch::zeros({3}))->save(h.dir.file("unsigned.pt"));
  testing::make_linear(weights(2.0), torch::zeros({3}))->save(h.dir.file("foreign.pt"));
  sign_model(h.dir.file("foreign.pt"), SignOptions(h.dir.file("other.key")));
  testing::make_linear(weights(2.0), torch::zeros({3}))->save(h.dir.file("altered.pt"));
  sign_model(h.dir.file("altered.pt"), SignOptions(h.dir.file("release.key")));
  { std::ofstream(h.dir.file("altered.pt"), std::ios::app) << "x"; }
  for (const char* f : {"unsigned.pt", "foreign.pt", "altered.pt"}) {
    auto r = swap(f);
    ASSERT_TRUE(r) << f;
    EXPECT_EQ(r->status, 403) << f << ": " << r->body;
    EXPECT_FALSE(reason(r).empty()) << f;
    EXPECT_EQ(h.gateway->model("m").current()->path, h.dir.file("m.pt")) << f;
  }
  EXPECT_NE(json::parse(swap("unsigned.pt")->body).value("error", "").find("not signed"), std::string::npos);
  // A model signed with the release key is swapped in.
  auto ok = swap("m2.pt");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(h.gateway->model("m").current()->path, h.dir.file("m2.pt"));
  // A gateway whose configured model is unsigned does not start.
  ServeConfig bad = c;
  bad.models[0].path = h.dir.file("unsigned.pt");
  bad.server.audit_path.clear();
  try {
    Gateway g(bad, GatewayOptions{h.clock, nullptr, h.keys});
    FAIL() << "an unsigned model was served";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::PermissionDenied) << e.what();
  }
  EXPECT_THROW(parse_serve_config("[server]\nverify_key = \"missing.pub\"\n[[models]]\nname = \"m\"\npath = \"m.pt\"\n",
                                  h.dir.path().string()),
               Error);
}

TEST(Gateway, MetricsForAuditorsAndATamperedAuditLogIsDetected) {
  Harness h;
  h.start(h.config());
  for (int i = 0; i < 3; ++i) h.infer(h.predict, Harness::body({{0.1f, 0.2f, 0.3f, 0.4f}}));
  h.infer(h.predict, "{}");
  EXPECT_EQ(h.client->Get("/metrics", Harness::auth(h.predict))->status, 403);
  auto m = h.client->Get("/metrics", Harness::auth(h.auditor));
  ASSERT_EQ(m->status, 200);
  EXPECT_NE(m->body.find("aegis_requests_total{model=\"m\",status=\"200\"} 3"), std::string::npos) << m->body;
  EXPECT_NE(m->body.find("aegis_rejections_total{reason=\"bad_request\"} 1"), std::string::npos);
  EXPECT_NE(m->body.find("aegis_batch_size_count{model=\"m\"} 3"), std::string::npos);
  EXPECT_NE(m->body.find("aegis_request_duration_seconds_bucket"), std::string::npos);
  auto head = h.client->Get("/v1/audit/head", Harness::auth(h.auditor));
  ASSERT_EQ(head->status, 200);
  const std::string expected_head = json::parse(head->body)["head"];
  h.server->stop();
  h.gateway.reset();
  EXPECT_TRUE(verify_audit_log(h.dir.file("audit.db"), expected_head).ok);
  // Someone turns a rejection into an allow.
  sqlite3* db = nullptr;
  sqlite3_open(h.dir.file("audit.db").c_str(), &db);
  ASSERT_EQ(
      sqlite3_exec(
          db, "DROP TRIGGER audit_no_update; UPDATE audit SET decision='allow', status=200 WHERE decision='reject'",
          nullptr, nullptr, nullptr),
      SQLITE_OK);
  sqlite3_close(db);
  AuditVerification v = verify_audit_log(h.dir.file("audit.db"));
  EXPECT_FALSE(v.ok);
  EXPECT_NE(v.problem.find("edited"), std::string::npos);
}

TEST(Gateway, KeyChangesByTheCliTakeEffectWithoutARestart) {
  testing::TempDir dir;
  testing::make_linear(weights(3.0), torch::zeros({3}))->save(dir.file("m.pt"));
  const std::string keys = dir.file("keys.json");
  const std::string key = KeyStore(keys).create(KeyOptions(Role::Predict)).key;
  ServeConfig c;
  c.server.port = 0;
  c.server.audit_path = dir.file("audit.db");
  c.server.keys_path = keys;
  ModelConfig m;
  m.name = "m";
  m.path = dir.file("m.pt");
  m.monitor = false;
  c.models.push_back(m);
  Gateway gw(c);
  GatewayServer server(gw);
  httplib::Client client("127.0.0.1", server.bind("127.0.0.1", 0));
  server.start();
  const std::string one = Harness::body({{0.9f, 0.1f, 0.2f, 0.3f}});
  auto infer = [&](const std::string& k) {
    return client.Post("/v2/models/m/infer", Harness::auth(k), one, "application/json");
  };
  ASSERT_EQ(infer(key)->status, 200);
  // What `aegis keys create / set-role / revoke` do, in their own store.
  const std::string later = KeyStore(keys).create(KeyOptions(Role::Predict)).key;
  EXPECT_EQ(infer(later)->status, 200);
  KeyStore(keys).set_role(key_id_of(later), Role::Auditor);
  auto r = infer(later);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(reason(r), "role_not_allowed");
  KeyStore(keys).revoke(key_id_of(key));
  r = infer(key);
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(reason(r), "revoked_key");
  server.stop();
}

TEST(Gateway, QuarantinesAndTheReviewQueueSurviveARestart) {
  Harness h;
  auto config = [&] {
    return h.config([](ModelConfig& m) {
      m.monitor = true;
      m.monitor_options = MonitorOptions().k(3).history(50).knn_threshold(0.05).prada(false);
      m.rules.push_back(ResponseRule{"monitor", 4, 0.2, ResponseAction::Quarantine, 0.1});
    });
  };
  h.start(config());
  int status = 200;
  for (int sent = 0; status == 200 && sent < 20; ++sent)
    status = h.infer(h.predict, Harness::body({{0.5f + 0.001f * sent, 0.5f, 0.5f, 0.5f}}))->status;
  ASSERT_EQ(status, 403);
  ASSERT_EQ(json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"].size(), 1u);
  // Restart: a new process would build a new Gateway from the same config.
  h.server->stop();
  h.server.reset();
  h.gateway.reset();
  h.start(config());
  auto r = h.infer(h.predict, Harness::body({{0.1f, 0.9f, 0.3f, 0.2f}}));
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(reason(r), "quarantined");
  json items = json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["evidence"]["samples"].size(), 1u);
  const std::string id = std::to_string(items[0]["id"].get<int64_t>());
  EXPECT_EQ(h.client->Post(("/v1/review/" + id).c_str(), Harness::auth(h.admin), R"({"decision":"dismiss"})",
                           "application/json")
                ->status,
            200);
  const std::string key = key_id_of(h.predict);
  EXPECT_EQ(
      h.client->Post(("/v1/keys/" + key + "/release").c_str(), Harness::auth(h.admin), "", "application/json")->status,
      200);
  EXPECT_EQ(h.infer(h.predict, Harness::body({{0.1f, 0.9f, 0.3f, 0.2f}}))->status, 200);
  // And the decisions stay made after another restart.
  h.server->stop();
  h.server.reset();
  h.gateway.reset();
  h.start(config());
  EXPECT_TRUE(json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"].empty());
  EXPECT_EQ(h.infer(h.predict, Harness::body({{0.9f, 0.1f, 0.3f, 0.2f}}))->status, 200);
}

/// A self-signed certificate for 127.0.0.1 made with the openssl tool: its
/// certificate (also its own CA) and key paths, or empty when openssl is missing.
std::pair<std::string, std::string> self_signed(const testing::TempDir& dir, const std::string& name) {
  const std::string cert = dir.file(name + ".crt"), key = dir.file(name + ".key");
  auto r = testing::run_command("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                                "-addext subjectAltName=IP:127.0.0.1 -keyout " +
                                key + " -out " + cert + " 2>&1");
  if (r.exit_code != 0) return {"", ""};
  return {cert, key};
}

TEST(Gateway, ServesTlsAndTheRemoteClassifierVerifiesTheCertificate) {
  Harness h;
  auto [cert, key] = self_signed(h.dir, "server");
  auto [other_ca, other_key] = self_signed(h.dir, "other");
  // scripts/setup installs openssl: without it this test fails rather than skips.
  ASSERT_FALSE(cert.empty() || other_ca.empty()) << "openssl could not make a certificate (scripts/setup installs it)";
  ServeConfig c = h.config();
  c.server.tls_cert = cert;
  c.server.tls_key = key;
  h.gateway = std::make_unique<Gateway>(c, GatewayOptions{h.clock, nullptr, h.keys});
  h.server = std::make_unique<GatewayServer>(*h.gateway);
  const int port = h.server->bind("127.0.0.1", 0);
  h.server->start();
  const std::string url = "https://127.0.0.1:" + std::to_string(port);
  // The served model over TLS, verified against its CA, answers as the model does.
  auto remote = RemoteClassifier::connect(RemoteOptions(url, "m").api_key(h.predict).ca_file(cert));
  torch::Tensor x = torch::tensor({{0.9f, 0.1f, 0.2f, 0.3f}, {0.1f, 0.2f, 0.8f, 0.0f}});
  EXPECT_TRUE(torch::equal(remote->predict(x), testing::make_linear(weights(3.0), torch::zeros({3}))->predict(x)));
  // A certificate from another CA is refused; so is one the system does not trust.
  EXPECT_EQ(testing::error_kind_of([&] { RemoteClassifier::connect(RemoteOptions(url, "m").api_key(h.predict).ca_file(other_ca)); }),
            ErrorKind::Io);
  EXPECT_EQ(testing::error_kind_of([&] { RemoteClassifier::connect(RemoteOptions(url, "m").api_key(h.predict)); }),
            ErrorKind::Io);
  // Plain HTTP to the TLS port gets nothing.
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(1, 0);
  plain.set_connection_timeout(1, 0);
  auto r = plain.Get("/v2/health/live");
  EXPECT_TRUE(!r || r->status != 200);
  h.server->stop();
  // Half a TLS configuration, or a key that does not match, is refused at start.
  c.server.tls_key.clear();
  EXPECT_EQ(testing::error_kind_of([&] { Gateway g(c, GatewayOptions{h.clock, nullptr, h.keys}); }),
            ErrorKind::InvalidArgument);
  c.server.tls_key = other_key;
  Gateway mismatched(c, GatewayOptions{h.clock, nullptr, h.keys});
  EXPECT_EQ(testing::error_kind_of([&] { GatewayServer s(mismatched); }), ErrorKind::InvalidArgument);
}

/// The output named `name` of an OIP-style response body.
json output_named(const json& body, const std::string& name) {
  for (const auto& o : body["outputs"])
    if (o["name"] == name) return o;
  return json();
}

TEST(GatewayExplain, AnswersKeysWithTheExplainRoleAndRefusesOthers) {
  Harness h;
  h.start(h.config());
  const std::vector<std::vector<float>> rows = {{0.9f, 0.1f, 0.2f, 0.3f}, {0.1f, 0.2f, 0.8f, 0.0f}};
  const json ig = {{"method", "ig"}, {"steps", 8}};
  auto r = h.explain_request(h.explain, rows, ig);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = json::parse(r->body);
  EXPECT_EQ(j["id"], "t");
  EXPECT_EQ(j["parameters"]["method"], "integrated-gradients");
  // IG of a linear model from a zero baseline is x * w[target], the target
  // being the predicted class (0 and 2 here).
  const json a = output_named(j, "attributions");
  EXPECT_EQ(a["datatype"], "FP32");
  EXPECT_EQ(a["shape"], json({2, 4}));
  EXPECT_EQ(output_named(j, "target")["data"], json({0, 2}));
  const torch::Tensor w = weights(3.0);
  for (int i = 0; i < 2; ++i)
    for (int f = 0; f < 4; ++f)
      EXPECT_NEAR(a["data"][i * 4 + f].get<double>(), rows[i][f] * w[i == 0 ? 0 : 2][f].item<double>(), 1e-5);
  for (const auto& g : output_named(j, "completeness_gap")["data"]) EXPECT_NEAR(g.get<double>(), 0.0, 1e-4);
  EXPECT_TRUE(output_named(j, "scores").is_null());  // explanations never carry the model's scores
  // A chosen class, and only the outputs asked for.
  json b = json::parse(Harness::body(rows));
  b["parameters"] = {{"method", "gradient-x-input"}, {"target", 1}};
  b["outputs"] = {{{"name", "attributions"}}};
  r = h.client->Post("/v2/models/m/explain", Harness::auth(h.explain), b.dump(), "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  j = json::parse(r->body);
  ASSERT_EQ(j["outputs"].size(), 1u);
  EXPECT_NEAR(output_named(j, "attributions")["data"][0].get<double>(), rows[0][0] * w[1][0].item<double>(), 1e-6);
  // Admins may too; predict and auditor keys, and no key, may not.
  EXPECT_EQ(h.explain_request(h.admin, rows, ig)->status, 200);
  r = h.explain_request(h.predict, rows, ig);
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(reason(r), "role_not_allowed");
  EXPECT_EQ(h.explain_request(h.auditor, rows, ig)->status, 403);
  EXPECT_EQ(h.client->Post("/v2/models/m/explain", Harness::body(rows), "application/json")->status, 401);
  // An explain key is not a predict key, but it may read the model's metadata.
  EXPECT_EQ(h.infer(h.explain, Harness::body(rows))->status, 403);
  EXPECT_EQ(h.client->Get("/v2/models/m", Harness::auth(h.explain))->status, 200);
  // Bad requests are 400s that say why.
  EXPECT_EQ(reason(h.explain_request(h.explain, rows, {{"steps", 8}})), "bad_request");
  r = h.explain_request(h.explain, rows, {{"method", "ig"}, {"stepz", 8}});
  EXPECT_EQ(r->status, 400);
  EXPECT_NE(json::parse(r->body)["error"].get<std::string>().find("stepz"), std::string::npos);
  EXPECT_EQ(h.explain_request(h.explain, rows, {{"method", "ig"}, {"target", {0}}})->status, 400);
  EXPECT_EQ(h.explain_request(h.explain, rows, {{"method", "ig"}, {"target", 7}})->status, 400);
  b = json::parse(Harness::body(rows));
  b["parameters"] = ig;
  b["outputs"] = {{{"name", "scores"}}};
  EXPECT_EQ(h.client->Post("/v2/models/m/explain", Harness::auth(h.explain), b.dump(), "application/json")->status,
            400);
  h.server->stop();
  // Every explanation, allowed or refused, is in the audit log with what it cost.
  auto rows_logged = audit_rows(h.dir.file("audit.db"), "kind='request' AND decision='explain'");
  ASSERT_EQ(rows_logged.size(), 3u);
  EXPECT_EQ(rows_logged[0]["key_id"], key_id_of(h.explain));
  EXPECT_GT(rows_logged[0]["details"]["explain"]["queries"].get<int64_t>(), 8);
}

TEST(GatewayExplain, OffersOnlyTheConfiguredMethodsWithinTheQueryLimit) {
  Harness h;
  h.start(h.config([](ModelConfig& m) {
    m.explain.methods = {"saliency", "ig"};
    m.explain.max_queries = 40;
  }));
  const std::vector<std::vector<float>> rows = {{0.9f, 0.1f, 0.2f, 0.3f}};
  auto r = h.explain_request(h.explain, rows, {{"method", "lime"}});
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(reason(r), "method_not_offered");
  EXPECT_EQ(h.explain_request(h.explain, rows, {{"method", "ig"}, {"steps", 16}})->status, 200);
  r = h.explain_request(h.explain, rows, {{"method", "ig"}, {"steps", 64}});
  EXPECT_EQ(r->status, 413);
  EXPECT_EQ(reason(r), "explanation_too_costly");
  Harness off;
  off.start(off.config([](ModelConfig& m) { m.explain.enabled = false; }));
  EXPECT_EQ(reason(off.explain_request(off.explain, rows, {{"method", "saliency"}})), "explain_disabled");
}

TEST(GatewayExplain, ChargesEveryModelEvaluationAgainstTheDailyQuota) {
  Harness h;
  h.start(h.config([](ModelConfig& m) { m.rate.daily_samples = 100; }));
  const std::vector<std::vector<float>> rows = {{0.9f, 0.1f, 0.2f, 0.3f}};
  const json ig = {{"method", "ig"}, {"steps", 28}};
  int64_t spent = 0, answered = 0;
  for (;;) {
    auto r = h.explain_request(h.explain, rows, ig);
    if (r->status != 200) {
      // One sample, but each explanation costs 30+ evaluations: three fit in 100, a fourth does not.
      EXPECT_EQ(r->status, 429);
      EXPECT_EQ(reason(r), "quota_exceeded");
      break;
    }
    spent += json::parse(r->body)["parameters"]["queries"].get<int64_t>();
    ++answered;
  }
  ASSERT_GT(answered, 0);
  EXPECT_EQ(answered, 100 / (spent / answered));
  // Saliency (three evaluations: the prediction, the gradient, the score)
  // still fits in what is left; a prediction of the same
  // sample by a predict key is on its own quota.
  EXPECT_EQ(h.explain_request(h.explain, rows, {{"method", "saliency"}})->status, 200);
  EXPECT_EQ(h.infer(h.predict, Harness::body(rows))->status, 200);
}

TEST(GatewayExplain, IsWatchedByTheQueryMonitorLikePredictions) {
  Harness h;
  h.start(h.config([](ModelConfig& m) {
    m.monitor = true;
    m.monitor_options = MonitorOptions().k(3).history(50).knn_threshold(0.05).prada(false);
    m.rules.push_back(ResponseRule{"monitor", 4, 0.2, ResponseAction::Quarantine, 0.1});
  }));
  // Probing one point through explanations (what gradient-based extraction
  // does) is flagged on the fourth query and quarantines the key on the fifth.
  int first_flag = -1, status = 200, sent = 0;
  while (status == 200 && sent < 20) {
    float d = 0.001f * sent;
    auto r = h.explain_request(h.explain, {{0.5f + d, 0.5f, 0.5f - d, 0.5f}}, {{"method", "saliency"}});
    status = r->status;
    ++sent;
    if (first_flag < 0 && r->has_header("X-Aegis-Flagged")) first_flag = sent;
  }
  EXPECT_EQ(first_flag, 4);
  EXPECT_EQ(status, 403);
  EXPECT_EQ(h.gateway->metrics().alerts("m", "monitor-knn"), 1);
  // The flagged explanation waits for review, with its input and map.
  json items = json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"];
  ASSERT_EQ(items.size(), 1u);
  EXPECT_EQ(items[0]["endpoint"], "explain");
  ASSERT_EQ(items[0]["evidence"]["samples"].size(), 1u);
  EXPECT_EQ(items[0]["evidence"]["samples"][0]["attribution"].size(), 4u);
}

TEST(GatewayExplain, ReviewItemsCarryTheFlaggedSamplesAndTheirMaps) {
  Harness h;
  h.start(h.config([](ModelConfig& m) {
    m.detection_policy = DetectionPolicy::Flag;
    m.detector_factory = [](ClassifierPtr) { return std::make_unique<MaxValueDetector>(0.95); };
    m.explain.review_samples = 2;
  }));
  // Three samples; the detector flags the second and third, which come first.
  const std::vector<std::vector<float>> rows = {
      {0.1f, 0.2f, 0.3f, 0.4f}, {0.1f, 0.2f, 1.0f, 0.4f}, {0.99f, 0.2f, 0.1f, 0.4f}};
  ASSERT_EQ(h.infer(h.predict, Harness::body(rows))->status, 200);
  json items = json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"];
  ASSERT_EQ(items.size(), 1u);
  const json& ev = items[0]["evidence"];
  EXPECT_EQ(ev["method"], "integrated-gradients");
  EXPECT_EQ(ev["clip"], json({0.0, 1.0}));
  ASSERT_EQ(ev["samples"].size(), 2u);
  const torch::Tensor w = weights(3.0);
  for (int k = 0; k < 2; ++k) {
    const json& s = ev["samples"][k];
    const int i = k + 1;
    EXPECT_EQ(s["index"], i);
    EXPECT_EQ(s["shape"], json({4}));
    EXPECT_EQ(s["input"].get<std::vector<float>>(), rows[i]);
    const int64_t c = s["predicted"].get<int64_t>();
    EXPECT_EQ(c, i == 1 ? 2 : 0);
    for (int f = 0; f < 4; ++f)  // IG of the predicted class from a zero baseline
      EXPECT_NEAR(s["attribution"][f].get<double>(), rows[i][f] * w[c][f].item<double>(), 1e-4);
  }
}

}  // namespace
}  // namespace aegis::serve
