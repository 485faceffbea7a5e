// The adaptive attack through the gateway: a model whose every wrong answer
// within eps needs some value pushed up, and a detector in reject mode that
// refuses any input with a value above 0.95. A search that moves values by
// the full eps is always refused; the one that shrinks its step after
// refusals stays under the detector and gets a wrong answer out of the
// gateway.

#include "aegis/serve/gateway_attack.h"

#include <gtest/gtest.h>

#include "gateway_harness.h"

namespace aegis::serve::testing_gateway {
namespace {

// logits = [0, sum(x) - 2.2] on 4 features in [0, 1]; the samples are 0.5
// everywhere (class 0, sum 2.0): +0.2 in total flips them.
void start_sum_gateway(Harness& h, const std::function<void(ModelConfig&)>& more = {}) {
  torch::Tensor w = torch::zeros({2, 4});
  w[1] = torch::ones({4});
  aegis::testing::make_linear(w, torch::tensor({0.0f, -2.2f}))->save(h.dir.file("sum.pt"));
  h.start(h.config([&](ModelConfig& m) {
    m.path = h.dir.file("sum.pt");
    m.fallback_path.clear();
    m.detection_policy = DetectionPolicy::Reject;
    m.detector_factory = [](ClassifierPtr) { return std::make_unique<MaxValueDetector>(0.95); };
    if (more) more(m);
  }));
}

TEST(GatewayAttack, AdaptingToRefusalsGetsPastADetectorTheFixedStepDoesNot) {
  Harness h;
  start_sum_gateway(h);
  auto remote = RemoteClassifier::connect(RemoteOptions(h.url(), "m").api_key(h.predict));
  torch::Tensor x = torch::full({6, 4}, 0.5f), y = torch::zeros({6}, torch::kLong);

  GatewayAttackResult fixed = gateway_attack(*remote, x, y, GatewayAttackOptions(0.5).max_queries(40).adaptive(false));
  EXPECT_EQ(fixed.evaded.sum().item<int64_t>(), 0);
  EXPECT_GT(fixed.refused.sum().item<int64_t>(), 0);  // every push up by eps was refused
  EXPECT_FALSE(fixed.blocked);

  GatewayAttackResult adaptive = gateway_attack(*remote, x, y, GatewayAttackOptions(0.5).max_queries(40).seed(1));
  EXPECT_EQ(adaptive.evaded.sum().item<int64_t>(), 6);
  // What evaded is in the eps ball and the range, under the detector, and
  // the gateway answers it with the wrong class.
  EXPECT_LE((adaptive.x_adv - x).abs().max().item<double>(), 0.5 + 1e-6);
  EXPECT_LE(adaptive.x_adv.max().item<double>(), 0.95);
  EXPECT_TRUE(torch::equal(remote->predict(adaptive.x_adv), torch::ones({6}, torch::kLong)));
  EXPECT_TRUE((adaptive.queries <= 40).all().item<bool>());
  nlohmann::json j = adaptive.to_json();
  EXPECT_EQ(j["evaded"], 6);
  EXPECT_EQ(j["attacked"], 6);
  EXPECT_DOUBLE_EQ(j["evasion_rate"].get<double>(), 1.0);
  EXPECT_EQ(j["queries"].get<int64_t>(), adaptive.queries.sum().item<int64_t>());
}

TEST(GatewayAttack, AResponseRuleThatQuarantinesTheKeyEndsTheAttack) {
  Harness h;
  start_sum_gateway(h, [](ModelConfig& m) {
    m.rules.push_back(ResponseRule{"detector", 4, 0.2, ResponseAction::Quarantine, 0.1});
  });
  auto remote = RemoteClassifier::connect(RemoteOptions(h.url(), "m").api_key(h.predict));
  torch::Tensor x = torch::full({6, 4}, 0.5f), y = torch::zeros({6}, torch::kLong);
  GatewayAttackResult r = gateway_attack(*remote, x, y, GatewayAttackOptions(0.5).max_queries(40).adaptive(false));
  EXPECT_TRUE(r.blocked);
  EXPECT_NE(r.blocked_reason.find("HTTP 403"), std::string::npos) << r.blocked_reason;
  EXPECT_EQ(r.evaded.sum().item<int64_t>(), 0);
  EXPECT_LT(r.queries.sum().item<int64_t>(), 6 * 40);
}

TEST(GatewayAttack, RefusesBadOptions) {
  Harness h;
  start_sum_gateway(h);
  auto remote = RemoteClassifier::connect(RemoteOptions(h.url(), "m").api_key(h.predict));
  torch::Tensor x = torch::full({1, 4}, 0.5f), y = torch::zeros({1}, torch::kLong);
  auto kind = [&](GatewayAttackOptions o) {
    return aegis::testing::error_kind_of([&] { gateway_attack(*remote, x, y, o); });
  };
  EXPECT_EQ(kind(GatewayAttackOptions(0)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(GatewayAttackOptions(0.1).max_queries(0)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(GatewayAttackOptions(0.1).p_init(0)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(GatewayAttackOptions(0.1).shrink(1.0)), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind(GatewayAttackOptions(0.1).grow(0.5)), ErrorKind::InvalidArgument);
  EXPECT_EQ(aegis::testing::error_kind_of([&] { gateway_attack(*remote, torch::zeros({1, 5}), y, GatewayAttackOptions(0.1)); }),
            ErrorKind::ShapeMismatch);
}

}  // namespace
}  // namespace aegis::serve::testing_gateway
