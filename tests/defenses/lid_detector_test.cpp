#include "aegis/defenses/detectors/lid_detector.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/detectors/detection_evaluation.h"
#include "support/test_support.h"

namespace aegis {
namespace {

// Points on a random `dim`-dimensional subspace of R^12, scaled into range.
Dataset subspace_points(int64_t n, int64_t dim, uint64_t seed) {
  auto gen = make_generator(7, "lid-basis");  // the same subspaces for every seed
  torch::Tensor basis = std::get<0>(torch::linalg::qr(torch::randn({12, 12}, gen))).slice(1, 0, dim);  // [12, dim]
  auto g = make_generator(seed, "lid-points");
  Dataset d;
  d.x = torch::rand({n, dim}, g).mul(4).sub(2).matmul(basis.t());
  d.y = torch::zeros({n}, torch::kLong);
  return d;
}

TEST(LIDDetector, EstimatesTheIntrinsicDimensionOfTheData) {
  auto model = testing::identity_features_model(12, 3);  // layer 0 = the inputs themselves
  for (int64_t dim : {2, 6}) {
    Dataset fit = subspace_points(700, dim, 1), query = subspace_points(200, dim, 2);
    auto det = LIDDetector::fit(model, fit, LIDOptions().k(20).reference(500));
    const double lid = det->lids(query.x).select(1, 0).mean().item<double>();
    // The maximum-likelihood estimate is biased low for small k; it tracks the dimension.
    EXPECT_GT(lid, 0.7 * double(dim)) << dim;
    EXPECT_LT(lid, 1.4 * double(dim)) << dim;
  }
}

TEST(LIDDetector, PointsOffTheManifoldScoreHigher) {
  auto model = testing::identity_features_model(12, 3);
  Dataset fit = subspace_points(700, 2, 1), query = subspace_points(200, 2, 2);
  auto det = LIDDetector::fit(model, fit, LIDOptions().k(20).reference(500));
  // The same points pushed off the plane in every direction.
  torch::Tensor off = query.x + 0.3 * torch::randn(query.x.sizes(), make_generator(3, "off"));
  EXPECT_GT(roc_auc(det->score(query.x), det->score(off)), 0.95);
  // Standardised on the clean fit data: clean scores sit around 0 per layer.
  EXPECT_LT(det->score(query.x).mean().abs().item<double>(), 1.0);
}

TEST(LIDDetector, SeparatesPGDExamplesOnTheBarsCnn) {
  auto model = testing::trained_bars_cnn();
  auto det = LIDDetector::fit(model, testing::make_bar_images(500, 4, 30), LIDOptions().k(20).reference(300));
  EXPECT_EQ(det->layers().size(), 3u);  // conv1, conv2, penultimate; the logits come last
  EXPECT_EQ(det->weights().numel(), 4);
  Dataset calib = testing::make_bar_images(200, 4, 31), test = testing::make_bar_images(200, 4, 32);
  DetectionEvaluation e = evaluate_detector(*det, *model, calib.x, test, {{"pgd", {{"eps", 0.2}, {"steps", 10}}}});
  EXPECT_GT(e.attacks[0].successful, 20);
  EXPECT_GT(e.attacks[0].auc, 0.85);
}

TEST(LIDDetector, RoundTripThroughJsonGivesTheSameScores) {
  auto model = testing::trained_bars_cnn();
  auto det = LIDDetector::fit(model, testing::make_bar_images(150, 4, 30), LIDOptions().k(10).reference(100));
  Dataset data = testing::make_bar_images(40, 4, 33);
  det->calibrate(data.x, 0.1);
  auto back = load_detector(det->to_json(), model);
  EXPECT_EQ(back->name(), "lid");
  EXPECT_DOUBLE_EQ(back->threshold(), det->threshold());
  EXPECT_TRUE(torch::allclose(back->score(data.x), det->score(data.x), 1e-5, 1e-5));
}

TEST(LIDDetector, RefusesBadOptionsAndCorruptState) {
  auto model = testing::trained_bars_cnn();
  Dataset fit = testing::make_bar_images(120, 4, 30);
  auto kind = [](const std::function<void()>& f) { return testing::error_kind_of(f); };
  EXPECT_EQ(kind([&] { LIDDetector::fit(model, fit, LIDOptions().k(1).reference(50)); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind([&] { LIDDetector::fit(model, fit, LIDOptions().k(60).reference(50)); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind([&] { LIDDetector::fit(model, fit, LIDOptions().reference(119)); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(kind([&] { LIDDetector::fit(model, fit, LIDOptions().reference(50).layers({5})); }),
            ErrorKind::InvalidArgument);

  auto det = LIDDetector::fit(model, fit, LIDOptions().k(10).reference(50));
  nlohmann::json good = det->to_json();
  auto corrupt = [&](const std::function<void(nlohmann::json&)>& edit) {
    nlohmann::json j = good;
    edit(j["state"]);
    return kind([&] { load_detector(j, model); });
  };
  EXPECT_EQ(corrupt([](nlohmann::json& s) { s["reference_f32_base64"] = "not base64!"; }), ErrorKind::CorruptData);
  EXPECT_EQ(corrupt([](nlohmann::json& s) { s["reference_shape"] = {50, 1, 28, 27}; }), ErrorKind::CorruptData);
  EXPECT_EQ(corrupt([](nlohmann::json& s) { s["reference_shape"] = {50}; }), ErrorKind::CorruptData);
  EXPECT_EQ(corrupt([](nlohmann::json& s) { s["weights"] = {1.0}; }), ErrorKind::CorruptData);
  EXPECT_EQ(corrupt([](nlohmann::json& s) { s["std"] = {1.0, 0.0, 1.0, 1.0}; }), ErrorKind::CorruptData);
  EXPECT_EQ(corrupt([](nlohmann::json& s) { s.erase("k"); }), ErrorKind::CorruptData);
  EXPECT_EQ(corrupt([](nlohmann::json& s) { s["layers"] = {-1}; }), ErrorKind::CorruptData);
}

}  // namespace
}  // namespace aegis
