#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/attacks/evasion/pgd.h"
#include "aegis/core/architectures.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/transforms/eot.h"
#include "aegis/defenses/transforms/feature_squeezing.h"
#include "aegis/defenses/transforms/gaussian_noise.h"
#include "aegis/defenses/transforms/spatial_smoothing.h"
#include "support/test_support.h"

namespace aegis {
namespace {

/// A linear classifier that separates two blob classes along the centres'
/// difference.
std::pair<std::shared_ptr<ScriptClassifier>, Dataset> blob_model() {
  Dataset d = testing::make_blobs(200, 20, 2, 3, 0.05);
  torch::Tensor c0 = d.x.index({d.y == 0}).mean(0), c1 = d.x.index({d.y == 1}).mean(0);
  torch::Tensor w = torch::stack({c0 - c1, c1 - c0}) * 10;
  torch::Tensor mid = (c0 + c1) / 2;
  torch::Tensor b = -(w.matmul(mid));
  return {testing::make_linear(w, b), d};
}

TEST(Transforms, BitDepthAndMedianComputeWhatTheySay) {
  torch::Tensor x = torch::tensor({0.0f, 0.2f, 0.49f, 0.51f, 1.0f});
  EXPECT_TRUE(torch::equal(reduce_bit_depth(x, 1, 0, 1), torch::tensor({0.0f, 0.0f, 0.0f, 1.0f, 1.0f})));
  torch::Tensor q = reduce_bit_depth(torch::rand({100}), 3, 0, 1);
  EXPECT_TRUE(torch::allclose(q * 7, torch::round(q * 7), 0, 1e-5));
  // A lone bright pixel disappears under a 3x3 median; a constant image stays.
  torch::Tensor img = torch::zeros({1, 1, 5, 5});
  img[0][0][2][2] = 1;
  EXPECT_EQ(median_filter(img, 3).sum().item<float>(), 0.0f);
  torch::Tensor flat = torch::full({2, 1, 6, 6}, 0.3f);
  EXPECT_TRUE(torch::allclose(median_filter(flat, 3), flat));
  EXPECT_THROW(median_filter(img, 2), Error);
}

TEST(Transforms, BPDAPassesGradientsStraightThroughAndExactSeesNone) {
  auto [model, d] = blob_model();
  auto squeezed = std::make_shared<FeatureSqueezing>(model, FeatureSqueezingOptions().bits(3));
  torch::Tensor x = d.x.slice(0, 0, 8);
  // BPDA: the gradient is the inner model's gradient at t(x).
  auto [l1, g_bpda] = squeezed->loss_gradient(x, d.y.slice(0, 0, 8));
  auto [l2, g_inner] = model->loss_gradient(squeezed->transform(x), d.y.slice(0, 0, 8));
  EXPECT_TRUE(torch::allclose(g_bpda, g_inner, 1e-5, 1e-6));
  EXPECT_TRUE(torch::allclose(l1, l2, 1e-5, 1e-6));
  squeezed->set_gradient(TransformedClassifier::Gradient::Exact);
  auto [l3, g_exact] = squeezed->loss_gradient(x, d.y.slice(0, 0, 8));
  EXPECT_EQ(g_exact.abs().sum().item<double>(),
            0.0);  // rounding has no gradient
}

TEST(Transforms, PlainAttackIsFooledBySqueezingButBPDAIsNot) {
  auto [model, d] = blob_model();
  auto squeezed = std::make_shared<FeatureSqueezing>(model, FeatureSqueezingOptions().bits(3));
  torch::Tensor correct = (squeezed->predict(d.x) == d.y).nonzero().flatten();
  torch::Tensor x = d.x.index_select(0, correct), y = d.y.index_select(0, correct);
  ASSERT_GT(x.size(0), 150);
  PGD pgd(PGDOptions(0.25).steps(20).seed(1));
  squeezed->set_gradient(TransformedClassifier::Gradient::Exact);
  double plain = pgd.run(*squeezed, x, y).success_rate();
  squeezed->set_gradient(TransformedClassifier::Gradient::BPDA);
  double bpda = pgd.run(*squeezed, x, y).success_rate();
  // Against the undefended model the same attack succeeds: the "robustness" is
  // masking.
  double undefended = pgd.run(*model, x, y).success_rate();
  EXPECT_GT(undefended, 0.9);
  EXPECT_LT(plain, 0.3) << "bpda " << bpda;
  EXPECT_GT(bpda, 0.9) << "plain " << plain;
}

TEST(Transforms, EOTAveragesOutTheNoiseOfRandomisedDefences) {
  auto [model, d] = blob_model();
  auto noisy = std::make_shared<GaussianNoise>(model, GaussianNoiseOptions(0.3).clip(false).seed(2));
  EXPECT_TRUE(noisy->randomized());
  torch::Tensor x = d.x.slice(0, 0, 32);
  // Two queries see different noise; reseeding repeats a stream.
  EXPECT_FALSE(torch::equal(noisy->transform(x), noisy->transform(x)));
  noisy->seed(5);
  torch::Tensor a = noisy->transform(x);
  noisy->seed(5);
  EXPECT_TRUE(torch::equal(a, noisy->transform(x)));
  // The EOT logits estimate the expected logits: for a linear model that is
  // the clean logits (zero-mean noise, no clipping), with error shrinking as
  // 1/sqrt(samples).
  torch::Tensor clean = model->logits(x);
  auto err = [&](int64_t k) { return (EOTClassifier(noisy, k).logits(x) - clean).pow(2).mean().item<double>(); };
  double e1 = err(1), e64 = err(64);
  EXPECT_LT(e64, e1 / 16) << e1 << " " << e64;
  EXPECT_THROW(EOTClassifier(noisy, 0), Error);
}

TEST(Transforms, EOTAttackBeatsSingleSampleAttackOnANoisyNonlinearModel) {
  // A model whose decision the noise scrambles: logits = 10 * w.(x - mid) *
  // cos-like ripple.
  auto [model, d] = blob_model();
  auto squeezed_noisy = std::make_shared<GaussianNoise>(
      std::make_shared<FeatureSqueezing>(model, FeatureSqueezingOptions().bits(3)), GaussianNoiseOptions(0.1).seed(1));
  torch::Tensor x = d.x, y = d.y;
  auto fooled = [&](const torch::Tensor& xa) {
    // Judge by the defended model's majority over 15 draws.
    torch::Tensor votes = torch::zeros({x.size(0), 2});
    for (int i = 0; i < 15; ++i) votes += torch::one_hot(squeezed_noisy->predict(xa), 2);
    return (votes.argmax(1) != y).to(torch::kDouble).mean().item<double>();
  };
  // Plain: the exact gradient through the squeezer is zero, and one noise draw
  // decides success.
  std::static_pointer_cast<TransformedClassifier>(squeezed_noisy->inner())
      ->set_gradient(TransformedClassifier::Gradient::Exact);
  squeezed_noisy->set_gradient(TransformedClassifier::Gradient::Exact);
  double plain = fooled(PGD(PGDOptions(0.3).steps(20).seed(3)).run(*squeezed_noisy, x, y).x_adv);
  // BPDA through both transformations, EOT over 16 draws.
  std::static_pointer_cast<TransformedClassifier>(squeezed_noisy->inner())
      ->set_gradient(TransformedClassifier::Gradient::BPDA);
  squeezed_noisy->set_gradient(TransformedClassifier::Gradient::BPDA);
  EOTClassifier eot(squeezed_noisy, 16);
  double adaptive = fooled(PGD(PGDOptions(0.3).steps(20).seed(3)).run(eot, x, y).x_adv);
  EXPECT_GT(adaptive, 0.7) << "plain " << plain;
  EXPECT_GT(adaptive, plain + 0.5) << "plain " << plain;
}

TEST(Transforms, SpatialSmoothingAndOptionChecks) {
  auto [model, blobs] = blob_model();
  EXPECT_THROW(SpatialSmoothing(model, SpatialSmoothingOptions()),
               Error);  // not images
  EXPECT_THROW(FeatureSqueezing(model, FeatureSqueezingOptions().median(3)), Error);
  EXPECT_THROW(FeatureSqueezing(model, FeatureSqueezingOptions().bits(17)), Error);
  EXPECT_THROW(GaussianNoise(model, GaussianNoiseOptions(0)), Error);
  seed_everything(1);
  std::shared_ptr<ScriptClassifier> cnn = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 2));
  EXPECT_THROW(SpatialSmoothing(cnn, SpatialSmoothingOptions().window(2)), Error);
  EXPECT_THROW(SpatialSmoothing(cnn, SpatialSmoothingOptions().kind("max")), Error);
  SpatialSmoothing median(cnn, SpatialSmoothingOptions().window(3));
  SpatialSmoothing mean(cnn, SpatialSmoothingOptions().window(3).kind("mean"));
  torch::Tensor img = torch::full({1, 1, 28, 28}, 0.2f);
  img[0][0][10][10] = 1.0f;
  torch::Tensor m = median.transform(img), a = mean.transform(img);
  EXPECT_FLOAT_EQ(m[0][0][10][10].item<float>(), 0.2f);  // the outlier is gone
  EXPECT_NEAR(a[0][0][10][10].item<float>(), 0.2f + 0.8f / 9,
              1e-5);  // averaged into its neighbours
  EXPECT_NEAR(a[0][0][9][9].item<float>(), 0.2f + 0.8f / 9, 1e-5);
  EXPECT_FLOAT_EQ(a[0][0][0][0].item<float>(), 0.2f);
  EXPECT_EQ(median.meta().provenance["input_defence"]["name"], "spatial-smoothing");
}

}  // namespace
}  // namespace aegis
