#include "aegis/defenses/detectors/adaptive_attack.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/detectors/detection_evaluation.h"
#include "aegis/defenses/detectors/feature_squeezing_detector.h"
#include "aegis/defenses/detectors/mahalanobis_detector.h"
#include "support/test_support.h"

namespace aegis {
namespace {

// A detector keyed to one input feature: it flags inputs whose feature 0 has
// moved up from where clean data has it. An attack that ignores it moves every
// feature of the linear model below (feature 0 included) and is caught; an
// attack that knows it can leave feature 0 alone and still flip the label.
class KeyedDetector : public Detector {
 public:
  std::string name() const override { return "keyed"; }
  torch::Tensor score(const torch::Tensor& x) override {
    torch::NoGradGuard g;
    return score_graph(x).detach();
  }
  torch::Tensor score_graph(const torch::Tensor& x) override { return x.select(1, 0) - 0.3; }
  std::string surrogate() const override { return "exact"; }

 protected:
  nlohmann::json state_json() const override { return nlohmann::json::object(); }
};

// logits = [0, sum(x) - 3.5]: class 0 samples sit at 0.3 +- 0.02 per feature
// (sum about 3.0), so Linf eps 0.1 on all ten features (+1.0) flips them, and
// on nine of them (+0.9) still does.
std::shared_ptr<ScriptClassifier> sum_model() {
  torch::Tensor w = torch::zeros({2, 10});
  w[1] = torch::ones({10});
  return testing::make_linear(w, torch::tensor({0.0f, -3.5f}));
}

Dataset class0(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed, "keyed-data");
  Dataset d;
  d.x = 0.3 + (torch::rand({n, 10}, gen) * 2 - 1) * 0.02;
  d.y = torch::zeros({n}, torch::kLong);
  return d;
}

TEST(AdaptiveDetectorAttack, DefeatsADetectorTheNonAdaptiveAttackDoesNot) {
  auto model = sum_model();
  KeyedDetector det;
  Dataset calib = class0(200, 1), test = class0(200, 2);
  for (const std::string method : {"combined", "orthogonal", "selective"}) {
    DetectionEvaluation e = evaluate_detector(
        det, *model, calib.x, test, {{"pgd", {{"eps", 0.1}, {"steps", 20}, {"early_stop", false}}}},
        DetectionEvaluationOptions().adaptive(AdaptiveDetectorAttackOptions(0.1).steps(50).method(method)));
    ASSERT_EQ(e.attacks.size(), 2u);
    EXPECT_DOUBLE_EQ(e.clean_accuracy, 1.0);
    const AttackDetection &pgd = e.attacks[0], &adaptive = e.attacks[1];
    // PGD fools the model on every sample, and the detector catches it.
    EXPECT_EQ(pgd.successful, 200);
    EXPECT_DOUBLE_EQ(e.robust_accuracy_model, 0.0);
    EXPECT_GT(pgd.tpr, 0.95);
    EXPECT_GT(e.robust_accuracy_detector, 0.95) << method;
    // The adaptive attack fools it too and slips under the threshold.
    EXPECT_TRUE(adaptive.adaptive);
    EXPECT_GT(adaptive.evaded, 190) << method;
    EXPECT_LT(e.robust_accuracy_adaptive, 0.05) << method;
    EXPECT_LT(adaptive.tpr, 0.05) << method;
    EXPECT_LE(e.robust_accuracy_adaptive, e.robust_accuracy_detector);
  }
}

TEST(AdaptiveDetectorAttack, StaysInTheEpsBallAndRangeAndLeavesTheModelAlone) {
  auto model = testing::trained_bars_cnn();
  Dataset calib = testing::make_bar_images(100, 4, 41), data = testing::make_bar_images(64, 4, 42);
  FeatureSqueezingDetector det(model, FeatureSqueezingDetectorOptions().bits(1).median(3));
  det.calibrate(calib.x, 0.05);
  std::vector<torch::Tensor> before;
  for (const auto& p : model->module().parameters()) before.push_back(p.clone());
  for (uint64_t seed : {0, 1, 2}) {
    for (Norm norm : {Norm::Linf, Norm::L2}) {
      const double eps = norm == Norm::Linf ? 0.15 : 2.0;
      auto r = adaptive_detector_attack(*model, det, data.x, data.y,
                                        AdaptiveDetectorAttackOptions(eps).norm(norm).steps(10).seed(seed));
      torch::Tensor d = (r.x_adv - data.x).flatten(1);
      const double size = norm == Norm::Linf ? d.abs().max().item<double>() : d.norm(2, 1).max().item<double>();
      EXPECT_LE(size, eps * (1 + 1e-5));
      EXPECT_GE(r.x_adv.min().item<double>(), 0.0);
      EXPECT_LE(r.x_adv.max().item<double>(), 1.0);
      // The result's flags are the detector's and the model's own answers.
      EXPECT_TRUE(torch::equal(r.flagged, det.flag(r.x_adv)));
      EXPECT_TRUE(torch::equal(r.fooled, model->predict(r.x_adv) != data.y));
      EXPECT_TRUE(torch::equal(r.evaded, r.fooled & ~r.flagged));
      EXPECT_EQ(r.surrogate, "bpda");
    }
  }
  size_t i = 0;
  for (const auto& p : model->module().parameters()) EXPECT_TRUE(torch::equal(p, before[i++]));
}

TEST(AdaptiveDetectorAttack, SurrogateScoresEqualTheDetectorsOwn) {
  auto model = testing::trained_bars_cnn();
  Dataset data = testing::make_bar_images(32, 4, 43);
  FeatureSqueezingDetector fs(model, FeatureSqueezingDetectorOptions().bits(2).median(3));
  auto maha = MahalanobisDetector::fit(model, testing::make_bar_images(200, 4, 44));
  auto noisy = MahalanobisDetector::fit(model, testing::make_bar_images(200, 4, 44), MahalanobisOptions().noise(0.01));
  for (Detector* d : std::vector<Detector*>{&fs, maha.get(), noisy.get()}) {
    torch::Tensor xg = data.x.clone().requires_grad_(true);
    torch::Tensor s = d->score_graph(xg);
    EXPECT_TRUE(torch::allclose(s.detach(), d->score(data.x), 1e-4, 1e-4)) << d->name();
    // And a gradient reaches the input.
    torch::Tensor g = torch::autograd::grad({s.sum()}, {xg})[0];
    EXPECT_GT(g.abs().sum().item<double>(), 0) << d->name();
  }
  EXPECT_EQ(maha->surrogate(), "exact");
  EXPECT_EQ(noisy->surrogate(), "bpda");
}

TEST(AdaptiveDetectorAttack, RefusesBadOptionsAndDetectorsWithoutASurrogate) {
  auto model = sum_model();
  KeyedDetector det;
  Dataset d = class0(8, 3);
  auto bad = [&](AdaptiveDetectorAttackOptions o) {
    return testing::error_kind_of([&] { adaptive_detector_attack(*model, det, d.x, d.y, o); });
  };
  EXPECT_EQ(bad(AdaptiveDetectorAttackOptions(0)), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad(AdaptiveDetectorAttackOptions(0.1).steps(0)), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad(AdaptiveDetectorAttackOptions(0.1).method("sideways")), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad(AdaptiveDetectorAttackOptions(0.1).norm(Norm::L1)), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad(AdaptiveDetectorAttackOptions(0.1).eot_samples(0)), ErrorKind::InvalidArgument);
  EXPECT_EQ(bad(AdaptiveDetectorAttackOptions(0.1).linf_step("diagonal")), ErrorKind::InvalidArgument);

  class Opaque : public Detector {
   public:
    std::string name() const override { return "opaque"; }
    torch::Tensor score(const torch::Tensor& x) override { return torch::zeros({x.size(0)}); }

   protected:
    nlohmann::json state_json() const override { return nlohmann::json::object(); }
  } opaque;
  EXPECT_EQ(testing::error_kind_of([&] {
              adaptive_detector_attack(*model, opaque, d.x, d.y, AdaptiveDetectorAttackOptions(0.1));
            }),
            ErrorKind::Unsupported);
}

}  // namespace
}  // namespace aegis
