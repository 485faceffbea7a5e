// Output policies: each one tripped by an input built to trip it and left
// quiet by one that should pass (a confident answer, a split vote, a flip
// under a one-pixel shift, a stream of one class), their settings from
// serve.toml, and the gateway end to end: abstained samples come back as
// "uncertain", a flag marks the answer and queues it for review, a reject
// withholds it, and each is in the audit log.

#include "aegis/serve/output_policy.h"

#include <gtest/gtest.h>
#include <torch/script.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"
#include "aegis/serve/config.h"
#include "aegis/serve/remote_classifier.h"
#include "gateway_harness.h"
#include "support/test_support.h"

namespace aegis::serve {
namespace {

using nlohmann::json;
using namespace testing_gateway;

/// A 1x4x4 image model with two classes: class 1's logit is 2 x the pixel
/// at (1, 1), class 0's is 1. A bright pixel there is class 1, and moving it
/// one pixel changes the answer; a dark image is class 0 and stays so.
std::shared_ptr<ScriptClassifier> pixel_model() {
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.PixelProbe"));
  m.register_attribute("training", c10::BoolType::get(), false);
  torch::Tensor w = torch::zeros({2, 16});
  w[1][5] = 2.0;
  m.register_parameter("weight", w, false);
  m.register_parameter("bias", torch::tensor({1.0f, 0.0f}), false);
  m.define(R"(
    def forward(self, x):
        return torch.linear(x.flatten(1), self.weight, self.bias)
  )");
  ModelMeta meta;
  meta.architecture = "pixel-probe";
  meta.input_shape = {1, 4, 4};
  meta.num_classes = 2;
  meta.clip_min = 0;
  meta.clip_max = 1;
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

torch::Tensor image_with(float pixel) {
  torch::Tensor x = torch::zeros({1, 1, 4, 4});
  x[0][0][1][1] = pixel;
  return x;
}

OutputPolicy::ProbsFn probs_of(Classifier& model) {
  return [&model](const torch::Tensor& q) { return model.probabilities(q); };
}

PolicyVerdict check(OutputPolicy& p, Classifier& model, const torch::Tensor& x, const std::string& key = "k") {
  return p.check(x, model.probabilities(x), key, probs_of(model));
}

TEST(OutputPolicy, ConfidenceFloorAbstainsOnlyOnUnsureAnswers) {
  auto model = pixel_model();
  OutputPolicyOptions o;
  o.min_confidence = 0.6;
  OutputPolicy p(o, model->meta(), 1);
  // Dark: logits (1, 0), confidence 0.73. Half-bright: a tie, 0.5.
  PolicyVerdict v = check(p, *model, torch::cat({image_with(0), image_with(0.5f)}));
  EXPECT_FALSE(v.abstain[0].item<bool>());
  EXPECT_TRUE(v.abstain[1].item<bool>());
  EXPECT_EQ(v.reason(), "policy-confidence");
  EXPECT_FALSE(v.flag || v.reject);
}

TEST(OutputPolicy, SplitVoteOverNoisyCopiesAbstains) {
  auto model = pixel_model();
  OutputPolicyOptions o;
  o.vote_samples = 32;
  o.vote_sigma = 0.1;
  o.vote_agreement = 0.9;
  OutputPolicy p(o, model->meta(), 7);
  // At the boundary (pixel 0.5) the copies split about evenly; far from it
  // (dark, or pixel 1.0) they all agree.
  PolicyVerdict v = check(p, *model, torch::cat({image_with(0), image_with(0.5f), image_with(1.0f)}));
  EXPECT_EQ(v.abstain.to(torch::kLong).sum().item<int64_t>(), 1);
  EXPECT_TRUE(v.abstain[1].item<bool>());
  const auto agreement = v.details["vote"]["agreement"].get<std::vector<float>>();
  EXPECT_FLOAT_EQ(agreement[0], 1.0f);
  EXPECT_FLOAT_EQ(agreement[2], 1.0f);
  EXPECT_LT(agreement[1], 0.9f);
  // The same seed draws the same noise.
  OutputPolicy again(o, model->meta(), 7);
  EXPECT_EQ(check(again, *model, torch::cat({image_with(0), image_with(0.5f), image_with(1.0f)}))
                .details["vote"]["agreement"],
            v.details["vote"]["agreement"]);
}

TEST(OutputPolicy, InvarianceFlagsAnswersThatFlipUnderAOnePixelShift) {
  auto model = pixel_model();
  OutputPolicyOptions o;
  o.invariance = {"shift", "brightness"};
  OutputPolicy p(o, model->meta(), 1);
  PolicyVerdict quiet = check(p, *model, image_with(0));
  EXPECT_TRUE(quiet.reasons.empty()) << quiet.details.dump();
  PolicyVerdict v = check(p, *model, image_with(1.0f));
  EXPECT_TRUE(v.flag);
  EXPECT_EQ(v.reason(), "policy-invariance");
  // Every shift moves the bright pixel off (1, 1); brightness keeps it.
  for (const char* t : {"shift-right", "shift-left", "shift-down", "shift-up"})
    EXPECT_EQ(v.details["invariance"]["flipped"][t], json::array({0})) << t;
  EXPECT_FALSE(v.details["invariance"]["flipped"].contains("brighter"));
  EXPECT_EQ(o.extra_queries_per_sample(), 6);
  // A shift needs images.
  OutputPolicyOptions tab;
  tab.invariance = {"shift"};
  auto linear = testing::make_linear(weights(3.0), torch::zeros({3}));
  EXPECT_EQ(testing::error_kind_of([&] { OutputPolicy bad(tab, linear->meta(), 1); }), ErrorKind::InvalidArgument);
}

TEST(OutputPolicy, ClassRateTripsOnOneKeysStreamOfOneClassOnly) {
  auto model = pixel_model();
  OutputPolicyOptions o;
  o.class_rates.push_back({0, 0.5, 6, PolicyAction::Reject});
  OutputPolicy p(o, model->meta(), 1);
  // Key a asks for class 0 every time; key b alternates.
  for (int i = 0; i < 5; ++i) {
    EXPECT_FALSE(check(p, *model, image_with(0), "a").reject) << i;  // the window is not full yet
    EXPECT_FALSE(check(p, *model, image_with(i % 2 ? 1.0f : 0.0f), "b").reject) << i;
  }
  PolicyVerdict v = check(p, *model, image_with(0), "a");
  EXPECT_TRUE(v.reject);
  EXPECT_EQ(v.reason(), "policy-class-rate");
  EXPECT_DOUBLE_EQ(v.details["class_rate"][0]["rate"].get<double>(), 1.0);
  EXPECT_FALSE(check(p, *model, image_with(1.0f), "b").reject);
  // A class the model does not have is refused when the policy is built.
  OutputPolicyOptions bad;
  bad.class_rates.push_back({5, 0.5, 10, PolicyAction::Flag});
  EXPECT_EQ(testing::error_kind_of([&] { OutputPolicy q(bad, model->meta(), 1); }), ErrorKind::InvalidArgument);
}

TEST(OutputPolicy, SettingsComeFromServeTomlAndBadOnesAreRefused) {
  const std::string base = R"(
[[models]]
name = "m"
path = "m.pt"
[models.policy]
min_confidence = 0.7
[models.policy.vote]
samples = 16
sigma = 0.05
action = "flag"
[models.policy.invariance]
transforms = ["brightness"]
brightness = 0.1
[[models.policy.class_rate]]
class = 2
max_rate = 0.3
window = 40
action = "reject"
)";
  ServeConfig c = parse_serve_config(base, "/tmp");
  const OutputPolicyOptions& p = c.models[0].policy;
  EXPECT_DOUBLE_EQ(p.min_confidence, 0.7);
  EXPECT_EQ(p.confidence_action, PolicyAction::Abstain);
  EXPECT_EQ(p.vote_samples, 16);
  EXPECT_EQ(p.vote_action, PolicyAction::Flag);
  EXPECT_EQ(p.invariance, std::vector<std::string>{"brightness"});
  ASSERT_EQ(p.class_rates.size(), 1u);
  EXPECT_EQ(p.class_rates[0].cls, 2);
  EXPECT_EQ(p.class_rates[0].action, PolicyAction::Reject);
  EXPECT_EQ(c.models[0].to_json()["policy"]["vote"]["samples"], 16);

  auto message = [&](const std::string& from, const std::string& to) {
    std::string text = base;
    text.replace(text.find(from), from.size(), to);
    return testing::error_message_of([&] { parse_serve_config(text, "/tmp"); });
  };
  EXPECT_NE(message("action = \"flag\"", "action = \"shrug\"").find("unknown policy action 'shrug'"),
            std::string::npos);
  EXPECT_NE(message("min_confidence = 0.7", "min_confidence = 1.5").find("min_confidence must be in [0, 1]"),
            std::string::npos);
  EXPECT_NE(message("brightness = 0.1", "brightnes = 0.1").find("unknown setting"), std::string::npos);
  EXPECT_NE(message("[\"brightness\"]", "[\"rotate\"]").find("unknown transform 'rotate'"), std::string::npos);
}

/// A harness gateway serving the pixel model with `policy`.
void start_pixel_gateway(Harness& h, const OutputPolicyOptions& policy) {
  pixel_model()->save(h.dir.file("pixel.pt"));
  h.start(h.config([&](ModelConfig& m) {
    m.path = h.dir.file("pixel.pt");
    m.fallback_path.clear();
    m.policy = policy;
  }));
}

std::string image_body(const std::vector<float>& pixels_at_1_1) {
  json data = json::array();
  for (float v : pixels_at_1_1) {
    std::vector<float> img(16, 0.0f);
    img[5] = v;
    data.push_back(img);
  }
  return json{
      {"id", "p"},
      {"inputs", {{{"name", "x"}, {"shape", {pixels_at_1_1.size(), 1, 4, 4}}, {"datatype", "FP32"}, {"data", data}}}}}
      .dump();
}

std::vector<int64_t> labels_of(const httplib::Result& r) {
  const json body = json::parse(r->body);
  if (body.contains("outputs"))
    for (const auto& o : body["outputs"])
      if (o["name"] == "label") return o["data"].get<std::vector<int64_t>>();
  return {};
}

TEST(OutputPolicyGateway, AbstainsFlagsIntoReviewAndLogsEachTrip) {
  Harness h;
  OutputPolicyOptions o;
  o.min_confidence = 0.6;
  o.vote_samples = 16;
  o.vote_agreement = 0.9;
  o.invariance = {"shift", "brightness"};
  start_pixel_gateway(h, o);

  // A dark image passes every policy.
  auto d = h.infer(h.predict, image_body({0.0f}));
  ASSERT_EQ(d->status, 200) << d->body;
  EXPECT_EQ(labels_of(d), std::vector<int64_t>{0});
  EXPECT_FALSE(json::parse(d->body)["parameters"].contains("abstained"));
  EXPECT_FALSE(d->has_header("X-Aegis-Flagged"));

  // A half-bright one sits on the boundary: unsure and split (abstained:
  // label -1, scores withheld), and brighter by 5% it flips (flagged).
  auto r = h.infer(h.predict, image_body({0.0f, 0.5f}));
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(labels_of(r), (std::vector<int64_t>{0, -1})) << r->body;
  json body = json::parse(r->body);
  EXPECT_EQ(body["parameters"]["abstained"], json::array({1}));
  for (const auto& out : body["outputs"])
    if (out["name"] == "scores") {
      EXPECT_GT(out["data"][0].get<double>(), 0.5);  // sample 0 answered
      EXPECT_EQ(out["data"][2], 0.0);                // sample 1 withheld
      EXPECT_EQ(out["data"][3], 0.0);
    }
  EXPECT_EQ(r->get_header_value("X-Aegis-Flagged"), "policy-invariance");

  // A bright one is confident and agreed, but any one-pixel shift flips it.
  auto f = h.infer(h.predict, image_body({1.0f}));
  ASSERT_EQ(f->status, 200) << f->body;
  EXPECT_EQ(labels_of(f), (std::vector<int64_t>{1}));
  EXPECT_EQ(f->get_header_value("X-Aegis-Flagged"), "policy-invariance");
  json items = json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"];
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[1]["reason"], "policy-invariance");
  EXPECT_EQ(h.gateway->metrics().alerts("m", "policy-invariance"), 2);
  EXPECT_EQ(h.gateway->metrics().alerts("m", "policy-confidence"), 1);
  EXPECT_EQ(h.gateway->metrics().alerts("m", "policy-vote"), 1);

  auto rows = audit_rows(h.dir.file("audit.db"), "kind = 'request' AND details LIKE '%/infer%'");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0]["decision"], "allow");
  EXPECT_EQ(rows[1]["decision"], "flag");
  EXPECT_EQ(rows[1]["details"]["abstained"], json::array({1}));
  EXPECT_EQ(rows[1]["details"]["policy"]["tripped"],
            json::array({"policy-confidence", "policy-vote", "policy-invariance"}));
  EXPECT_EQ(rows[2]["decision"], "flag");
  EXPECT_EQ(rows[2]["reason"], "policy-invariance");
  EXPECT_EQ(rows[2]["details"]["policy"]["invariance"]["flipped"]["shift-left"], json::array({0}));
}

TEST(OutputPolicyGateway, AbstainingAloneIsItsOwnDecision) {
  Harness h;
  OutputPolicyOptions o;
  o.min_confidence = 0.6;
  start_pixel_gateway(h, o);
  auto r = h.infer(h.predict, image_body({0.5f}));
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(labels_of(r), std::vector<int64_t>{-1});
  EXPECT_FALSE(r->has_header("X-Aegis-Flagged"));
  auto rows = audit_rows(h.dir.file("audit.db"), "kind = 'request'");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["decision"], "abstain");
  EXPECT_TRUE(json::parse(h.client->Get("/v1/review", Harness::auth(h.admin))->body)["items"].empty());
}

TEST(OutputPolicyGateway, ARemoteClassifierReadsAnAbstentionAsNoClass) {
  for (OutputMode mode : {OutputMode::Full, OutputMode::Label}) {
    Harness h;
    OutputPolicyOptions o;
    o.min_confidence = 0.6;
    pixel_model()->save(h.dir.file("pixel.pt"));
    h.start(h.config([&](ModelConfig& m) {
      m.path = h.dir.file("pixel.pt");
      m.fallback_path.clear();
      m.policy = o;
      m.output.mode(mode);
    }));
    auto remote = RemoteClassifier::connect(RemoteOptions(h.url(), "m").api_key(h.predict));
    torch::Tensor logits = remote->logits(torch::cat({image_with(1.0f), image_with(0.5f)}));
    EXPECT_EQ(logits[0].argmax().item<int64_t>(), 1);
    EXPECT_EQ(logits[1][0].item<float>(), logits[1][1].item<float>()) << logits;  // equal: no class
  }
}

TEST(OutputPolicyGateway, PolicyAlertsFeedTheResponseRules) {
  Harness h;
  OutputPolicyOptions o;
  o.invariance = {"shift"};
  pixel_model()->save(h.dir.file("pixel.pt"));
  h.start(h.config([&](ModelConfig& m) {
    m.path = h.dir.file("pixel.pt");
    m.fallback_path.clear();
    m.policy = o;
    ResponseRule r;
    r.source = "policy";
    r.window = 2;
    r.max_alert_rate = 0.5;
    r.action = ResponseAction::Quarantine;
    m.rules.push_back(r);
  }));
  // Quiet answers do not count; two flipping answers in a window of two quarantine the key.
  EXPECT_EQ(h.infer(h.predict, image_body({0.0f}))->status, 200);
  EXPECT_EQ(h.infer(h.predict, image_body({1.0f}))->status, 200);
  EXPECT_EQ(h.infer(h.predict, image_body({0.0f}))->status, 200);
  EXPECT_EQ(h.infer(h.predict, image_body({1.0f}))->status, 200);
  EXPECT_EQ(h.infer(h.predict, image_body({1.0f}))->status, 200);  // the rule fires on this one
  EXPECT_EQ(h.infer(h.predict, image_body({0.0f}))->status, 403);
  auto actions = audit_rows(h.dir.file("audit.db"), "kind = 'response'");
  ASSERT_EQ(actions.size(), 1u);
  EXPECT_EQ(actions[0]["decision"], "quarantine");
}

TEST(OutputPolicyGateway, ClassRateRejectWithholdsTheAnswer) {
  Harness h;
  OutputPolicyOptions o;
  o.class_rates.push_back({0, 0.5, 3, PolicyAction::Reject});
  start_pixel_gateway(h, o);
  EXPECT_EQ(h.infer(h.predict, image_body({0.0f}))->status, 200);
  EXPECT_EQ(h.infer(h.predict, image_body({0.0f}))->status, 200);
  auto r = h.infer(h.predict, image_body({0.0f}));
  EXPECT_EQ(r->status, 422);
  EXPECT_EQ(json::parse(r->body)["reason"], "output_policy");
  EXPECT_EQ(labels_of(r), std::vector<int64_t>{});
  auto rows = audit_rows(h.dir.file("audit.db"), "kind = 'request' AND status = 422");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0]["reason"], "output_policy");
  EXPECT_EQ(rows[0]["details"]["policy"]["tripped"], json::array({"policy-class-rate"}));
  // A class-1 answer is not the rule's class: answered.
  EXPECT_EQ(h.infer(h.predict, image_body({1.0f}))->status, 200);
}

}  // namespace
}  // namespace aegis::serve
