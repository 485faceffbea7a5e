// Gradient explainers against closed forms: on a linear model Integrated
// Gradients and gradient x input are (x - x') * w exactly; on f = x1 * x2
// Gauss-Legendre IG from zero is (x1 x2 / 2, x1 x2 / 2) exactly; ignored
// features get zero; the reported completeness gap is what it says; batches
// equal single samples; seeds reproduce; the model never changes.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <numeric>

#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"
#include "aegis/explain/expected_gradients.h"
#include "aegis/explain/gradient_x_input.h"
#include "aegis/explain/integrated_gradients.h"
#include "aegis/explain/noise_tunnel.h"
#include "aegis/explain/saliency.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;
using testing::error_message_of;

std::shared_ptr<ScriptClassifier> product_model() {
  // logits = [x0 * x1, 0]: explaining class 0.
  torch::jit::Module m(c10::QualifiedName("__torch__.aegis.Product"));
  m.register_attribute("training", c10::BoolType::get(), false);
  m.define(R"(
    def forward(self, x):
        p = x[:, 0] * x[:, 1]
        return torch.stack([p, torch.zeros_like(p)], 1)
  )");
  ModelMeta meta;
  meta.architecture = "product";
  meta.input_shape = {2};
  meta.num_classes = 2;
  return std::make_shared<ScriptClassifier>(std::move(m), meta);
}

struct Linear {
  torch::Tensor w = torch::tensor({{0.5f, -1.0f, 2.0f, 0.0f}, {-0.3f, 0.7f, 0.1f, 0.0f}});  // feature 3 is ignored
  torch::Tensor b = torch::tensor({0.2f, -0.1f});
  std::shared_ptr<ScriptClassifier> model = testing::make_linear(w, b);
  torch::Tensor x = torch::rand({16, 4}, torch::Generator(at::detail::createCPUGenerator(3)));
};

TEST(Quadrature, WeightsSumToOneAndGaussLegendreIsExactToDegree2nMinus1) {
  for (IntegrationRule r : {IntegrationRule::GaussLegendre, IntegrationRule::RiemannLeft, IntegrationRule::RiemannRight,
                            IntegrationRule::RiemannMiddle, IntegrationRule::Trapezoid})
    for (int64_t n : {2, 3, 7, 50, 300}) {
      Quadrature q = quadrature(r, n);
      ASSERT_EQ(q.alphas.size(), size_t(n));
      EXPECT_EQ(std::accumulate(q.weights.begin(), q.weights.end(), 0.0), 1.0) << integration_rule_name(r) << n;
      for (double a : q.alphas) EXPECT_TRUE(a >= 0 && a <= 1);
    }
  for (int64_t n : {1, 2, 5, 16}) {
    Quadrature q = quadrature(IntegrationRule::GaussLegendre, n);
    for (int deg = 0; deg <= 2 * n - 1; ++deg) {
      double s = 0;
      for (size_t k = 0; k < q.alphas.size(); ++k) s += q.weights[k] * std::pow(q.alphas[k], deg);
      EXPECT_NEAR(s, 1.0 / (deg + 1), 1e-14) << "n " << n << " degree " << deg;
    }
  }
  EXPECT_EQ(error_kind_of([] { quadrature(IntegrationRule::Trapezoid, 1); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([] { parse_integration_rule("simpson"); }), ErrorKind::InvalidArgument);
}

TEST(IntegratedGradients, OnALinearModelEqualsInputMinusBaselineTimesWeights) {
  Linear lin;
  torch::Tensor target = torch::randint(0, 2, {16}, torch::Generator(at::detail::createCPUGenerator(4)));
  torch::Tensor w_t = lin.w.index_select(0, target);  // [16, 4]
  for (IntegrationRule r : {IntegrationRule::GaussLegendre, IntegrationRule::RiemannLeft,
                            IntegrationRule::RiemannMiddle, IntegrationRule::Trapezoid}) {
    for (BaselineOptions b : {BaselineOptions(), BaselineOptions(BaselineKind::Constant).value(0.5),
                              BaselineOptions(BaselineKind::Uniform).seed(9)}) {
      IntegratedGradients ig(IntegratedGradientsOptions().steps(5).rule(r).baseline(b));
      Attribution a = ig.explain(*lin.model, lin.x, target);
      torch::Tensor x0 = make_baseline(b, lin.x, lin.model->meta());
      EXPECT_TRUE(torch::allclose(a.values, (lin.x - x0) * w_t, 1e-5, 1e-6)) << integration_rule_name(r);
      EXPECT_LT(a.gap.abs().max().item<double>(), 1e-5);
      EXPECT_TRUE(torch::all(a.values.select(1, 3) == 0).item<bool>()) << "the ignored feature gets zero";
    }
  }
  Attribution gxi = GradientXInput().explain(*lin.model, lin.x, target);
  EXPECT_TRUE(torch::allclose(gxi.values, lin.x * w_t, 1e-5, 1e-6));
  EXPECT_LT(gxi.gap.abs().max().item<double>(), 1e-5);
  Attribution sal = Saliency(SaliencyOptions().absolute(false)).explain(*lin.model, lin.x, target);
  EXPECT_TRUE(torch::allclose(sal.values, w_t));
  EXPECT_FALSE(sal.has_completeness());
}

TEST(ExpectedGradients, OnALinearModelIsWeightsTimesInputMinusTheMeanReferenceAndComplete) {
  Linear lin;
  torch::Tensor target = torch::randint(0, 2, {16}, torch::Generator(at::detail::createCPUGenerator(5)));
  torch::Tensor w_t = lin.w.index_select(0, target);
  // One reference: exactly IG from that baseline.
  torch::Tensor one = torch::rand({1, 4}, torch::Generator(at::detail::createCPUGenerator(6)));
  Attribution a = ExpectedGradients(one, ExpectedGradientsOptions().samples(7)).explain(*lin.model, lin.x, target);
  EXPECT_TRUE(torch::allclose(a.values, (lin.x - one) * w_t, 1e-5, 1e-6));
  EXPECT_LT(a.gap.abs().max().item<double>(), 1e-5);
  // Many references: every attribution sums to f(x) - mean f(references drawn), the ignored feature gets zero.
  torch::Tensor bg = torch::rand({30, 4}, torch::Generator(at::detail::createCPUGenerator(7)));
  ExpectedGradients eg(bg, ExpectedGradientsOptions().samples(2000).seed(3));
  Attribution m = eg.explain(*lin.model, lin.x, target);
  EXPECT_LT(m.gap.abs().max().item<double>(), 1e-4);
  EXPECT_TRUE(torch::all(m.values.select(1, 3) == 0).item<bool>());
  // ... and approaches w * (x - mean(background)) as the draws grow.
  EXPECT_TRUE(torch::allclose(m.values, (lin.x - bg.mean(0, true)) * w_t, 0, 0.05));
  // Batches equal single samples; a seed reproduces.
  Attribution single = eg.explain(*lin.model, lin.x.narrow(0, 5, 1), target.narrow(0, 5, 1));
  EXPECT_TRUE(torch::equal(single.values[0], m.values[5]));
  EXPECT_TRUE(torch::equal(eg.explain(*lin.model, lin.x, target).values, m.values));
  EXPECT_EQ(error_kind_of([] { ExpectedGradients(torch::Tensor()); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { ExpectedGradients(torch::rand({3, 5})).explain(*lin.model, lin.x); }),
            ErrorKind::ShapeMismatch);
}

TEST(IntegratedGradients, OnAProductGaussLegendreSplitsItExactlyAndRiemannLeftDoesNot) {
  auto model = product_model();
  torch::Tensor x = torch::tensor({{0.3f, 0.8f}, {1.0f, 0.5f}, {0.9f, 0.1f}});
  torch::Tensor target = torch::zeros({3}, torch::kLong);
  torch::Tensor half = (x.select(1, 0) * x.select(1, 1) / 2).unsqueeze(1).expand({3, 2});
  Attribution gl = IntegratedGradients(IntegratedGradientsOptions().steps(1)).explain(*model, x, target);
  EXPECT_TRUE(torch::allclose(gl.values, half, 0, 1e-7)) << gl.values;
  EXPECT_LT(gl.gap.abs().max().item<double>(), 1e-7);
  // Left Riemann sums with n steps give (n - 1) / n of the half: a gap the report shows.
  Attribution left = IntegratedGradients(IntegratedGradientsOptions().steps(4).rule(IntegrationRule::RiemannLeft))
                         .explain(*model, x, target);
  EXPECT_TRUE(torch::allclose(left.values, half * 0.75, 0, 1e-6));
  torch::Tensor expected_gap = -(x.select(1, 0) * x.select(1, 1) * 0.25).to(torch::kDouble);
  EXPECT_TRUE(torch::allclose(left.gap, expected_gap, 0, 1e-6)) << left.gap;
}

TEST(IntegratedGradients, OnACnnIsCompleteBatchInvariantChunkInvariantAndLeavesTheModelAlone) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(6, 4, 31);
  std::vector<torch::Tensor> before;
  for (const auto& p : model->module().parameters()) before.push_back(p.clone());
  IntegratedGradients ig(IntegratedGradientsOptions().steps(64));
  Attribution a = ig.explain(*model, d.x);
  EXPECT_TRUE(torch::equal(a.target, model->predict(d.x)));
  // The gap is what it says, and small next to f(x) - f(0).
  torch::Tensor sums = a.values.to(torch::kDouble).flatten(1).sum(1);
  EXPECT_TRUE(torch::allclose(a.gap, sums - (a.score - a.baseline_score).to(torch::kDouble), 0, 1e-5));
  EXPECT_LT((a.gap.abs() / (a.score - a.baseline_score).abs().to(torch::kDouble)).max().item<double>(), 0.05);
  for (int64_t i = 0; i < 6; ++i) {
    Attribution one = ig.explain(*model, d.x.narrow(0, i, 1));
    EXPECT_TRUE(torch::allclose(one.values[0], a.values[i], 1e-4, 1e-6)) << i;
  }
  // A memory cap that forces one interpolated input per pass changes nothing.
  Attribution capped = IntegratedGradients(IntegratedGradientsOptions().steps(64).max_batch(1)).explain(*model, d.x);
  EXPECT_TRUE(torch::allclose(capped.values, a.values, 1e-4, 1e-5))
      << (capped.values - a.values).abs().max() << " of " << a.values.abs().max();
  auto after = model->module().parameters();
  size_t k = 0;
  for (const auto& p : after) EXPECT_TRUE(torch::equal(p, before[k++]));
  EXPECT_EQ(a.queries, 6 * 64 + 6 + 6 + 6) << "interpolations, predict, score and baseline score";
}

TEST(NoiseTunnel, SmoothGradReproducesWithASeedAndGivesEachSampleItsOwnNoise) {
  auto model = testing::trained_bars_cnn();
  Dataset d = testing::make_bar_images(4, 4, 32);
  auto saliency = std::make_shared<Saliency>(SaliencyOptions().absolute(false));
  NoiseTunnel sg(saliency, NoiseTunnelOptions().samples(8).seed(5));
  Attribution a = sg.explain(*model, d.x), b = sg.explain(*model, d.x);
  EXPECT_TRUE(torch::equal(a.values, b.values));
  EXPECT_EQ(a.method, "smoothgrad(saliency)");
  Attribution other = NoiseTunnel(saliency, NoiseTunnelOptions().samples(8).seed(6)).explain(*model, d.x);
  EXPECT_FALSE(torch::equal(a.values, other.values));
  Attribution single = sg.explain(*model, d.x.narrow(0, 2, 1));
  EXPECT_TRUE(torch::allclose(single.values[0], a.values[2], 1e-4, 1e-6));
  // With no noise SmoothGrad is the plain gradient and VarGrad is zero.
  Attribution plain = saliency->explain(*model, d.x);
  Attribution noiseless = NoiseTunnel(saliency, NoiseTunnelOptions().samples(3).stdev(0)).explain(*model, d.x);
  EXPECT_TRUE(torch::allclose(noiseless.values, plain.values, 1e-5, 1e-7));
  Attribution var = NoiseTunnel(saliency, NoiseTunnelOptions().samples(3).stdev(0).kind(NoiseTunnelKind::VarGrad))
                        .explain(*model, d.x);
  EXPECT_LT(var.values.abs().max().item<double>(), 1e-10);
  Attribution sq =
      NoiseTunnel(saliency, NoiseTunnelOptions().samples(8).seed(5).kind(NoiseTunnelKind::SmoothGradSquared))
          .explain(*model, d.x);
  EXPECT_TRUE(torch::all(sq.values >= 0).item<bool>());
  // Draws chunked through the inner explainer give the same result.
  Attribution chunked =
      NoiseTunnel(saliency, NoiseTunnelOptions().samples(8).seed(5).max_batch(1)).explain(*model, d.x);
  EXPECT_TRUE(torch::allclose(chunked.values, a.values, 1e-4, 1e-6));
}

TEST(Explainer, RefusesBadTargetsShapesRangesAndBlackBoxes) {
  Linear lin;
  Saliency s;
  EXPECT_EQ(error_kind_of([&] { s.explain(*lin.model, lin.x, torch::full({16}, 2, torch::kLong)); }),
            ErrorKind::InvalidArgument);
  EXPECT_NE(error_message_of([&] {
              s.explain(*lin.model, lin.x, torch::zeros({3}, torch::kLong));
            }).find("one target class per sample"),
            std::string::npos);
  EXPECT_EQ(error_kind_of([&] { s.explain(*lin.model, torch::rand({2, 5})); }), ErrorKind::ShapeMismatch);
  EXPECT_NE(error_message_of([&] { s.explain(*lin.model, lin.x + 2); }).find("valid range"), std::string::npos);
  EXPECT_NE(error_message_of([&] {
              IntegratedGradients(IntegratedGradientsOptions().baseline(BaselineOptions(BaselineKind::Blur)))
                  .explain(*lin.model, lin.x);
            }).find("needs image inputs"),
            std::string::npos);
  EXPECT_NE(error_message_of([&] {
              IntegratedGradients(IntegratedGradientsOptions().baseline(BaselineOptions().tensor(torch::zeros({3}))))
                  .explain(*lin.model, lin.x);
            }).find("matches neither"),
            std::string::npos);
  EXPECT_EQ(error_kind_of([] {
              NoiseTunnel(std::make_shared<Saliency>(), NoiseTunnelOptions().samples(1).kind(NoiseTunnelKind::VarGrad));
            }),
            ErrorKind::InvalidArgument);
}

TEST(Baseline, BlurKeepsTheMeanOfAConstantImageAndSmoothsAnEdge) {
  torch::Tensor flat = torch::full({1, 1, 12, 12}, 0.4f);
  ModelMeta meta;
  EXPECT_TRUE(torch::allclose(make_baseline(BaselineOptions(BaselineKind::Blur).blur_sigma(2), flat, meta), flat));
  torch::Tensor edge = torch::zeros({1, 1, 12, 12});
  edge.narrow(3, 6, 6).fill_(1);
  torch::Tensor blurred = make_baseline(BaselineOptions(BaselineKind::Blur).blur_sigma(2), edge, meta);
  EXPECT_GT(blurred[0][0][5][5].item<float>(), 0.1f);
  EXPECT_LT(blurred[0][0][5][6].item<float>(), 0.9f);
  torch::Tensor u = make_baseline(BaselineOptions(BaselineKind::Uniform).seed(1), edge, meta);
  EXPECT_TRUE(torch::equal(u, make_baseline(BaselineOptions(BaselineKind::Uniform).seed(1), edge, meta)));
  EXPECT_GE(u.min().item<float>(), 0.f);
  EXPECT_LE(u.max().item<float>(), 1.f);
}

}  // namespace
}  // namespace aegis
