#include "aegis/defenses/detectors/strip_detector.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/poisoning/poison.h"
#include "aegis/defenses/detectors/detection_evaluation.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::kTinyBackdoorTarget;

Trigger tiny_trigger() { return trigger_from_record(testing::tiny_backdoor_record()).first; }

TEST(STRIPDetector, TriggeredInputsHaveLowEntropyOnTheBackdooredModelOnly) {
  Dataset pool = testing::make_tiny_backdoor_data(64, 1), clean = testing::make_tiny_backdoor_data(200, 2);
  torch::Tensor triggered = tiny_trigger().apply(clean.x);
  for (bool planted : {true, false}) {
    auto model = testing::tiny_backdoor_model(planted);
    if (planted) {
      EXPECT_TRUE((model->predict(triggered) == kTinyBackdoorTarget).all().item<bool>());
    }
    auto det = STRIPDetector::fit(model, pool.x, STRIPOptions().overlays(32).pool(32));
    det->calibrate(clean.x.slice(0, 0, 100), 0.01);
    torch::Tensor clean_flag = det->flag(clean.x.slice(0, 100, 200));
    torch::Tensor trig_flag = det->flag(triggered.slice(0, 100, 200));
    EXPECT_LE(clean_flag.to(torch::kFloat).mean().item<float>(), 0.05) << "planted " << planted;
    if (planted) {
      EXPECT_TRUE(trig_flag.all().item<bool>());
      // A trigger that dominates every blend: the mean entropy is near zero.
      EXPECT_GT(det->score(triggered.slice(0, 0, 10)).min().item<float>(), -0.01);
    } else {
      // On the clean model the patch is just pixels: blends of a triggered
      // input are as mixed as a clean one's.
      EXPECT_LE(trig_flag.to(torch::kFloat).mean().item<float>(), 0.05);
    }
  }
}

TEST(STRIPDetector, ScoreIsTheNegatedMeanEntropyOfTheBlends) {
  auto model = testing::tiny_backdoor_model(true);
  Dataset d = testing::make_tiny_backdoor_data(40, 3);
  for (std::string blend : {"add", "mix"}) {
    STRIPDetector det(model, d.x.slice(0, 0, 8), STRIPOptions().overlays(8).blend(blend).alpha(0.3));
    EXPECT_FALSE(det.randomized());
    torch::Tensor x = d.x.slice(0, 8, 13);
    torch::Tensor s = det.score(x);
    for (int64_t i = 0; i < 5; ++i) {
      double h = 0;
      for (int64_t k = 0; k < 8; ++k) {
        torch::Tensor b = blend == "add" ? (x[i] + d.x[k]).clamp(0, 1) : 0.7 * x[i] + 0.3 * d.x[k];
        torch::Tensor p = model->probabilities(b.unsqueeze(0))[0].to(torch::kDouble);
        h -= (p * p.log()).sum().item<double>();
      }
      EXPECT_NEAR(s[i].item<double>(), -h / 8, 1e-5) << blend << " sample " << i;
    }
    // The differentiable form is the same function, and reaches the input.
    torch::Tensor xg = x.clone().requires_grad_(true);
    torch::Tensor sg = det.score_graph(xg);
    EXPECT_TRUE(torch::allclose(sg.detach(), s, 1e-5, 1e-6));
    sg.sum().backward();
    ASSERT_TRUE(xg.grad().defined());
    EXPECT_GT(xg.grad().abs().sum().item<double>(), 0);
  }
}

TEST(STRIPDetector, BatchingDoesNotChangeScoresAndALargerPoolDrawsOverlays) {
  auto model = testing::tiny_backdoor_model(true);
  Dataset d = testing::make_tiny_backdoor_data(60, 4);
  STRIPDetector big(model, d.x.slice(0, 0, 16), STRIPOptions().overlays(16).batch_size(4096));
  STRIPDetector small(model, d.x.slice(0, 0, 16), STRIPOptions().overlays(16).batch_size(16));
  EXPECT_TRUE(torch::allclose(big.score(d.x.slice(0, 20, 40)), small.score(d.x.slice(0, 20, 40)), 1e-5, 1e-6));
  STRIPDetector drawn(model, d.x.slice(0, 0, 40), STRIPOptions().overlays(10));
  EXPECT_TRUE(drawn.randomized());
  torch::Tensor b = drawn.blends(d.x.slice(0, 45, 47));
  EXPECT_EQ(b.sizes(), (std::vector<int64_t>{20, 1, 12, 12}));
  EXPECT_GE(b.min().item<float>(), 0.0);
  EXPECT_LE(b.max().item<float>(), 1.0);
}

TEST(STRIPDetector, RoundTripsThroughJsonAndRefusesBadInput) {
  auto model = testing::tiny_backdoor_model(true);
  Dataset d = testing::make_tiny_backdoor_data(50, 5);
  auto det = STRIPDetector::fit(model, d.x, STRIPOptions().overlays(20).pool(20).blend("mix").alpha(0.4));
  det->calibrate(d.x.slice(0, 20, 50), 0.1);
  auto back = load_detector(det->to_json(), model);
  EXPECT_EQ(back->name(), "strip");
  EXPECT_DOUBLE_EQ(back->threshold(), det->threshold());
  EXPECT_TRUE(torch::equal(back->score(d.x.slice(0, 30, 40)), det->score(d.x.slice(0, 30, 40))));

  EXPECT_EQ(testing::error_kind_of([&] { STRIPDetector(model, d.x.slice(0, 0, 5), STRIPOptions().overlays(10)); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(testing::error_kind_of([&] { STRIPDetector(model, d.x, STRIPOptions().blend("paste")); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(testing::error_kind_of([&] { STRIPDetector(model, d.x, STRIPOptions().overlays(10).blend("mix").alpha(1.0)); }),
            ErrorKind::InvalidArgument);
  EXPECT_EQ(testing::error_kind_of([&] { STRIPDetector(model, torch::rand({20, 1, 8, 8}), STRIPOptions().overlays(10)); }),
            ErrorKind::ShapeMismatch);
  nlohmann::json j = det->to_json();
  j["state"]["pool_f32_base64"] = "AAAA";
  EXPECT_EQ(testing::error_kind_of([&] { load_detector(j, model); }), ErrorKind::CorruptData);
  j = det->to_json();
  j["state"].erase("overlays");
  EXPECT_EQ(testing::error_kind_of([&] { load_detector(j, model); }), ErrorKind::CorruptData);
  j = det->to_json();
  j["state"]["overlays"] = 500;  // more than the stored pool
  EXPECT_EQ(testing::error_kind_of([&] { load_detector(j, model); }), ErrorKind::CorruptData);
}

TEST(STRIPDetector, DetectionEvaluationReportsTheTriggerRow) {
  auto model = testing::tiny_backdoor_model(true);
  Dataset pool = testing::make_tiny_backdoor_data(64, 6), data = testing::make_tiny_backdoor_data(300, 7);
  auto det = STRIPDetector::fit(model, pool.x, STRIPOptions().overlays(32).pool(64));
  DetectionEvaluation e = evaluate_detector(*det, *model, data.x.slice(0, 0, 100), data.subset(torch::arange(100, 300)),
                                            {}, DetectionEvaluationOptions().target_fpr(0.01).backdoor(tiny_trigger(), kTinyBackdoorTarget));
  ASSERT_EQ(e.attacks.size(), 1u);
  const AttackDetection& t = e.attacks[0];
  EXPECT_EQ(t.attack, "trigger");
  EXPECT_FALSE(t.bounded);
  const int64_t others = (data.y.slice(0, 100, 300) != kTinyBackdoorTarget).sum().item<int64_t>();
  EXPECT_EQ(t.attacked, others);
  EXPECT_EQ(t.successful, others);  // the backdoor always works
  EXPECT_EQ(t.evaded, 0);
  EXPECT_DOUBLE_EQ(t.tpr, 1.0);
  EXPECT_GT(t.auc, 0.99);
  EXPECT_NEAR(t.model_robust_accuracy, 1.0 - double(others) / 200, 1e-9);
  EXPECT_NEAR(t.robust_accuracy, 1.0, 1e-9);
  // The trigger is not an eps-bounded attack: the worst case stays the clean accuracy.
  EXPECT_DOUBLE_EQ(e.robust_accuracy_model, e.clean_accuracy);
}

}  // namespace
}  // namespace aegis
