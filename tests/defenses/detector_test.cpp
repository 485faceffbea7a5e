#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/detectors/detection_evaluation.h"
#include "aegis/defenses/detectors/feature_squeezing_detector.h"
#include "aegis/defenses/detectors/mahalanobis_detector.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

std::shared_ptr<ScriptClassifier> bars_cnn() {
  static std::shared_ptr<ScriptClassifier> model = [] {
    seed_everything(3);
    Dataset d = testing::make_bar_images(512, 4, 1);
    auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
    train(*m, d, nullptr, TrainOptions().epochs(2).batch_size(64).lr(3e-3));
    return m;
  }();
  return model;
}

TEST(RocAuc, MatchesHandComputedValues) {
  EXPECT_DOUBLE_EQ(roc_auc(torch::tensor({0.1, 0.2}), torch::tensor({0.3, 0.4})), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc(torch::tensor({0.3, 0.4}), torch::tensor({0.1, 0.2})), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc(torch::tensor({0.5}), torch::tensor({0.5})), 0.5);
  // 1 < 2 < 3 < 4 with negatives {1, 3} and positives {2, 4}: pairs won 3 of 4.
  EXPECT_DOUBLE_EQ(roc_auc(torch::tensor({1.0, 3.0}), torch::tensor({2.0, 4.0})), 0.75);
  EXPECT_THROW(roc_auc(torch::zeros({0}), torch::ones({2})), Error);
}

TEST(Detectors, FeatureSqueezingSeparatesPGDExamplesFromCleanOnes) {
  auto model = bars_cnn();
  Dataset calib = testing::make_bar_images(200, 4, 21), test = testing::make_bar_images(200, 4, 22);
  FeatureSqueezingDetector det(model, FeatureSqueezingDetectorOptions().bits(1).median(3));
  DetectionEvaluation e = evaluate_detector(det, *model, calib.x, test, {{"pgd", {{"eps", 0.2}, {"steps", 10}}}});
  ASSERT_EQ(e.attacks.size(), 1u);
  EXPECT_GT(e.attacks[0].successful, 40);
  EXPECT_GT(e.attacks[0].auc, 0.9);
  EXPECT_GT(e.attacks[0].tpr, 0.5);
  EXPECT_LT(e.clean_fpr, 0.15);  // calibrated for 5% on other clean data
}

TEST(Detectors, MahalanobisSeparatesOffManifoldInputsAndPGDExamples) {
  auto model = bars_cnn();
  auto det = MahalanobisDetector::fit(model, testing::make_bar_images(400, 4, 30));
  Dataset calib = testing::make_bar_images(200, 4, 31), test = testing::make_bar_images(200, 4, 32);
  // Uniform noise images are far from every class.
  torch::Tensor noise = torch::rand({100, 1, 28, 28}, make_generator(1, "noise"));
  EXPECT_GT(roc_auc(det->score(test.x), det->score(noise)), 0.95);
  DetectionEvaluation e = evaluate_detector(*det, *model, calib.x, test, {{"pgd", {{"eps", 0.2}, {"steps", 10}}}});
  EXPECT_GT(e.attacks[0].auc, 0.9);
}

TEST(Detectors, MahalanobisFitsEveryFeatureMapAndStandardisesItsScores) {
  auto model = bars_cnn();
  Dataset fit = testing::make_bar_images(400, 4, 30);
  auto det = MahalanobisDetector::fit(model, fit);
  // The cnn's maps: conv1 [32 channels], conv2 [64], penultimate [128]; a
  // map is summarised per channel by its mean and spread over positions.
  ASSERT_EQ(det->layers().size(), 3u);
  EXPECT_EQ(det->layers()[0].means.sizes(), torch::IntArrayRef({4, 64}));
  EXPECT_EQ(det->layers()[1].means.sizes(), torch::IntArrayRef({4, 128}));
  EXPECT_EQ(det->layers()[2].means.sizes(), torch::IntArrayRef({4, 128}));
  // On the fit data each layer's score has mean 0 and standard deviation 1.
  torch::Tensor z = det->layer_scores(fit.x);
  EXPECT_TRUE(torch::allclose(z.mean(0), torch::zeros({3}, torch::kDouble), 0, 1e-6));
  EXPECT_TRUE(torch::allclose(z.std(0), torch::ones({3}, torch::kDouble), 0, 1e-6));
  // Equal weights: the score is the sum of the layer scores.
  EXPECT_TRUE(torch::allclose(det->score(fit.x).to(torch::kDouble), z.sum(1), 1e-5, 1e-4));
  // Layer choice, negative from the end; out of range is refused.
  auto last = MahalanobisDetector::fit(model, fit, MahalanobisOptions().layers({-1}));
  ASSERT_EQ(last->layers().size(), 1u);
  EXPECT_EQ(last->layers()[0].index, 2);
  EXPECT_THROW(MahalanobisDetector::fit(model, fit, MahalanobisOptions().layers({3})), Error);
}

TEST(Detectors, MahalanobisLayerWeightsFavourTheLayerThatSeparates) {
  auto model = bars_cnn();
  auto det = MahalanobisDetector::fit(model, testing::make_bar_images(400, 4, 30));
  // Clean bars against the same bars with faint pixel noise: the noise moves
  // the first convolution's statistics, the classes barely.
  Dataset clean = testing::make_bar_images(300, 4, 33), fresh = testing::make_bar_images(300, 4, 34);
  auto noisy = [](const torch::Tensor& x, uint64_t seed) {
    return (x + 0.08 * torch::randn(x.sizes(), make_generator(seed, "noise"))).clamp(0, 1);
  };
  torch::Tensor z = det->layer_scores(noisy(clean.x, 1)) - det->layer_scores(clean.x);
  det->fit_weights(clean.x, noisy(clean.x, 1));
  torch::Tensor w = det->weights();
  // The layer whose score the noise raises most gets the largest weight.
  EXPECT_EQ(w.argmax().item<int64_t>(), z.mean(0).argmax().item<int64_t>());
  EXPECT_TRUE(std::isnan(det->calibrated_fpr()));  // a new score needs a new threshold
  // The tuned score separates fresh samples at least as well as equal weights.
  auto equal = MahalanobisDetector::fit(model, testing::make_bar_images(400, 4, 30));
  double tuned = roc_auc(det->score(fresh.x), det->score(noisy(fresh.x, 2)));
  EXPECT_GT(tuned, 0.95);
  EXPECT_GE(tuned + 1e-9, roc_auc(equal->score(fresh.x), equal->score(noisy(fresh.x, 2))));
}

TEST(Detectors, MahalanobisInputPreprocessingLowersCleanScores) {
  auto model = bars_cnn();
  Dataset fit = testing::make_bar_images(400, 4, 30), clean = testing::make_bar_images(100, 4, 35);
  auto plain = MahalanobisDetector::fit(model, fit);
  auto moved = MahalanobisDetector::fit(model, fit, MahalanobisOptions().noise(0.001));
  // A small step against the score's gradient lowers it on (nearly) every input.
  torch::Tensor lower = moved->score(clean.x) < plain->score(clean.x);
  EXPECT_GT(lower.to(torch::kDouble).mean().item<double>(), 0.9);
  // The model is left as it was: no gradients on its parameters.
  for (const auto& [name, t] : model->named_tensors()) EXPECT_FALSE(t.grad().defined()) << name;
}

TEST(Detectors, RoundTripThroughJsonGivesTheSameScores) {
  auto model = bars_cnn();
  Dataset d = testing::make_bar_images(64, 4, 40);
  auto maha = MahalanobisDetector::fit(model, testing::make_bar_images(200, 4, 41), MahalanobisOptions().noise(0.005));
  maha->fit_weights(d.x, torch::rand(d.x.sizes(), make_generator(4, "noise")));
  maha->calibrate(d.x, 0.1);
  FeatureSqueezingDetector fs(model, FeatureSqueezingDetectorOptions().bits(2).median(1));
  fs.calibrate(d.x, 0.05);
  testing::TempDir dir;
  for (Detector* det : std::vector<Detector*>{maha.get(), &fs}) {
    save_detector(*det, dir.file("d.json"));
    auto back = load_detector_file(dir.file("d.json"), model);
    EXPECT_EQ(back->name(), det->name());
    EXPECT_DOUBLE_EQ(back->threshold(), det->threshold());
    EXPECT_DOUBLE_EQ(back->calibrated_fpr(), det->calibrated_fpr());
    EXPECT_TRUE(torch::allclose(back->score(d.x), det->score(d.x), 1e-5, 1e-6));
    EXPECT_TRUE(torch::equal(back->flag(d.x), det->flag(d.x)));
  }
  // About 10% of the calibration data is flagged.
  EXPECT_NEAR(maha->flag(d.x).to(torch::kDouble).mean().item<double>(), 0.1, 0.03);
}

TEST(Detectors, MalformedOrUnknownDetectorsAreRejected) {
  auto model = bars_cnn();
  auto kind = [&](const nlohmann::json& j) {
    try {
      load_detector(j, model);
    } catch (const Error& e) {
      return e.kind();
    }
    return ErrorKind::Internal;
  };
  EXPECT_EQ(kind({{"type", "nope"}, {"threshold", 1}}), ErrorKind::InvalidArgument);
  // The single-layer format of an earlier version: refit, with a reason.
  EXPECT_EQ(kind({{"type", "mahalanobis"}, {"threshold", 1}, {"state", {{"means", {{1.0}}}}}}), ErrorKind::CorruptData);
  auto layer = [](nlohmann::json means, double log_std) {
    return nlohmann::json{{"index", 0},
                          {"means", std::move(means)},
                          {"precision", {{1.0, 0.0}, {0.0, 1.0}}},
                          {"log_mean", 0.0},
                          {"log_std", log_std}};
  };
  auto state = [&](nlohmann::json layers, nlohmann::json weights) {
    return nlohmann::json{{"type", "mahalanobis"},
                          {"threshold", 1},
                          {"state", {{"layers", std::move(layers)}, {"weights", std::move(weights)}}}};
  };
  nlohmann::json four = {{1.0, 2.0}, {1.0, 2.0}, {1.0, 2.0}, {1.0, 2.0}};
  EXPECT_EQ(kind(state({layer({{1.0, 2.0}}, 1)}, {1.0})), ErrorKind::CorruptData);  // one class for a 4-class model
  EXPECT_EQ(kind(state({layer(four, 0)}, {1.0})), ErrorKind::CorruptData);          // zero spread
  EXPECT_EQ(kind(state({layer(four, 1)}, {1.0, 2.0})), ErrorKind::CorruptData);     // two weights, one layer
  EXPECT_EQ(kind(state(nlohmann::json::array(), nlohmann::json::array())), ErrorKind::CorruptData);
  // Well-formed, but fitted for another model: the feature sizes disagree at scoring time.
  auto other = load_detector(state({layer(four, 1)}, {1.0}), model);
  EXPECT_THROW(other->score(torch::zeros({2, 1, 28, 28})), Error);
  EXPECT_EQ(kind({{"type", "feature-squeezing"}, {"threshold", 1}, {"state", {{"bits", "x"}}}}),
            ErrorKind::CorruptData);
  EXPECT_THROW(FeatureSqueezingDetector(model, FeatureSqueezingDetectorOptions().bits(0).median(1)), Error);
  // A model without features() cannot have a Mahalanobis detector.
  auto linear = testing::make_linear(torch::zeros({2, 3}), torch::zeros({2}));
  try {
    MahalanobisDetector::fit(linear, testing::make_blobs(20, 3, 2, 1));
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  }
}

}  // namespace
}  // namespace aegis
