#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/inference/attribute_inference.h"
#include "aegis/attacks/inference/model_inversion.h"
#include "aegis/attacks/surrogate_model.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "support/test_support.h"

namespace aegis {
namespace {

std::shared_ptr<ScriptClassifier> bars_cnn(const Dataset& d) {
  static std::shared_ptr<ScriptClassifier> model = [&] {
    seed_everything(5);
    auto m = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 4));
    train(*m, d, nullptr, TrainOptions().epochs(3).batch_size(64).lr(3e-3));
    return m;
  }();
  return model;
}

const Dataset& bars() {
  static Dataset d = testing::make_bar_images(512, 4, 1);
  return d;
}

TEST(Ssim, IdentityIsOneAndDifferenceIsLess) {
  auto gen = make_generator(1, "ssim");
  torch::Tensor a = torch::rand({1, 28, 28}, gen);
  EXPECT_NEAR(ssim(a, a), 1.0, 1e-9);
  EXPECT_LT(ssim(a, torch::rand({1, 28, 28}, gen)), 0.2);
  EXPECT_LT(ssim(a, (a * 0.5).clone()), 1.0);
  EXPECT_THROW(ssim(a, torch::rand({1, 27, 28})), Error);
  EXPECT_DOUBLE_EQ(total_variation(torch::full({2, 1, 5, 5}, 0.3)).abs().sum().item<double>(), 0.0);
}

TEST(MIFace, WhiteBoxReconstructionsAreNearestTheirOwnClassMean) {
  auto model = bars_cnn(bars());
  std::vector<torch::Tensor> before;
  for (auto& p : model->parameters()) before.push_back(p.clone());
  model->reset_queries();
  InversionResult r = mi_face(*model, InversionOptions().steps(150).lr(0.05), &bars());
  EXPECT_EQ(r.reconstructions.size(0), 4);
  EXPECT_EQ(r.queries, 150 * 4);
  EXPECT_GE(r.reconstructions.min().item<double>(), 0.0);
  EXPECT_LE(r.reconstructions.max().item<double>(), 1.0);
  EXPECT_GE(r.closest_to_own_fraction, 0.75);
  EXPECT_GT(r.confidence.min().item<double>(), 0.5);
  ASSERT_EQ(r.ssim_own.size(), 4u);
  auto after = model->parameters();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(before[i], after[i]));
  nlohmann::json j = r.to_json();
  EXPECT_EQ(j["atlas"], "AML.T0024.001");
  EXPECT_EQ(j["owasp"], "ML03");
}

TEST(MIFace, QueryOnlyGradientEstimationAlsoRecoversClasses) {
  auto model = bars_cnn(bars());
  model->reset_queries();
  InversionResult r =
      mi_face(*model, InversionOptions().gradient("estimated").steps(60).samples(20).sigma(0.02).lr(0.05), &bars());
  EXPECT_EQ(r.queries, 60 * 20 * 4);
  EXPECT_GE(r.closest_to_own_fraction, 0.75);
}

TEST(MIFace, FashionMnistReconstructionsAreNearestTheirOwnClassMean) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  // A CNN trained briefly on 1,000 real images; class means from the same images.
  Dataset train_split = load_dataset(DataSpec("fashion-mnist").split("train").limit(1000));
  auto meta = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10))->meta();
  auto model = train_surrogate(
      meta, train_split, SurrogateModelOptions().arch("cnn").train(TrainOptions().epochs(4).batch_size(32).lr(2e-3)));
  InversionResult r = mi_face(*model, InversionOptions(), &train_split);
  RecordProperty("closest_to_own_fraction", std::to_string(r.closest_to_own_fraction));
  EXPECT_GE(r.closest_to_own_fraction, 0.6);  // most of the 10 classes
  EXPECT_EQ(r.reconstructions.size(0), 10);
}

TEST(MIFace, RejectsBadOptions) {
  auto model = bars_cnn(bars());
  EXPECT_THROW(mi_face(*model, InversionOptions().gradient("estimated").access(OutputAccess().mode(AnswerMode::Label))),
               Error);
  EXPECT_THROW(mi_face(*model, InversionOptions().classes({7})), Error);
  EXPECT_THROW(mi_face(*model, InversionOptions().samples(3)), Error);
  EXPECT_THROW(mi_face(*model, InversionOptions().init("zeros")), Error);
  EXPECT_THROW(mi_face(*model, InversionOptions().objective("prob")), Error);
}

/// Tabular data where the label depends on a binary sensitive feature (3).
Dataset sensitive_table(int64_t n, uint64_t seed) {
  auto gen = make_generator(seed, "table");
  torch::Tensor x = torch::rand({n, 6}, gen);
  torch::Tensor s = (torch::rand({n}, gen) < 0.3).to(torch::kFloat);  // marginal: 70% zeros
  x.select(1, 3).copy_(s);
  torch::Tensor score = x.select(1, 0) + 1.5 * s - 0.5 * x.select(1, 1);
  Dataset d;
  d.x = x;
  d.y = (score > 0.75).to(torch::kLong) + (score > 1.6).to(torch::kLong);
  return d;
}

TEST(AttributeInference, BeatsTheMarginalBaseline) {
  Dataset d = sensitive_table(3000, 1);
  seed_everything(2);
  auto model = build_architecture(ArchitectureOptions("mlp", {6}, 3).hidden({64}));
  train(*model, d, nullptr, TrainOptions().epochs(15).batch_size(64).lr(3e-3));
  model->reset_queries();
  Dataset targets = d.head(500);
  AttributeInferenceResult r = attribute_inference(*model, targets, d, AttributeInferenceOptions(3));
  EXPECT_EQ(r.candidates, (std::vector<double>{0.0, 1.0}));
  EXPECT_NEAR(r.prior[0], 0.7, 0.05);
  EXPECT_EQ(r.queries, 2 * 500);
  EXPECT_NEAR(r.baseline_accuracy, 0.7, 0.06);
  EXPECT_GT(r.accuracy, r.baseline_accuracy + 0.1);
  // Label-only answers still carry the leak here.
  auto label = attribute_inference(*model, targets, d,
                                   AttributeInferenceOptions(3).access(OutputAccess().mode(AnswerMode::Label)));
  EXPECT_GT(label.accuracy, label.baseline_accuracy);
}

TEST(AttributeInference, RejectsBadInputs) {
  Dataset d = sensitive_table(100, 1);  // feature 0 takes 100 distinct values
  auto model = testing::make_linear(torch::ones({3, 6}), torch::zeros({3}));
  EXPECT_THROW(attribute_inference(*model, d, d, AttributeInferenceOptions(6)), Error);
  try {
    attribute_inference(*model, d, d,
                        AttributeInferenceOptions(0));  // continuous feature
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("give candidates"), std::string::npos);
  }
  auto image_model = bars_cnn(bars());
  EXPECT_THROW(attribute_inference(*image_model, bars(), bars(), AttributeInferenceOptions(0)), Error);
}

}  // namespace
}  // namespace aegis
