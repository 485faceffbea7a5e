// Explanation quality metrics: Spearman against hand-computed values,
// deletion/insertion curves on a linear model where the right order is
// known, the model-randomisation sanity check flagging an "explainer" that
// ignores the model (an edge map, the failure Adebayo et al. found) and
// passing gradients; and the Fashion-MNIST figures the issue asks for.

#include "aegis/explain/metrics.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/architectures.h"
#include "aegis/core/dataset_io.h"
#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/training/trainer.h"
#include "aegis/explain/attribution_metrics.h"
#include "aegis/explain/integrated_gradients.h"
#include "aegis/explain/noise_tunnel.h"
#include "aegis/explain/saliency.h"
#include "support/test_support.h"

namespace aegis {
namespace {

/// Ignores the model: the magnitude of the input's horizontal and vertical differences.
class EdgeMap : public Explainer {
 public:
  std::string name() const override { return "edge-map"; }
  bool needs_gradients() const override { return false; }
  nlohmann::json options_json() const override { return nlohmann::json::object(); }

 protected:
  Attribution attribute(Classifier&, const torch::Tensor& x, const torch::Tensor&) override {
    torch::Tensor dx = torch::zeros_like(x), dy = torch::zeros_like(x);
    dx.narrow(3, 1, x.size(3) - 1).copy_(x.narrow(3, 1, x.size(3) - 1) - x.narrow(3, 0, x.size(3) - 1));
    dy.narrow(2, 1, x.size(2) - 1).copy_(x.narrow(2, 1, x.size(2) - 1) - x.narrow(2, 0, x.size(2) - 1));
    Attribution a;
    a.values = (dx * dx + dy * dy).sqrt();
    return a;
  }
};

TEST(Spearman, MatchesHandComputedValuesWithTies) {
  torch::Tensor a = torch::tensor({{1.0, 2.0, 3.0, 4.0}, {1.0, 2.0, 3.0, 4.0}, {0.0, 0.0, 1.0, 2.0}});
  torch::Tensor b = torch::tensor({{10.0, 20.0, 30.0, 40.0}, {4.0, 3.0, 2.0, 1.0}, {5.0, 6.0, 7.0, 8.0}});
  torch::Tensor r = explain::spearman(a, b);
  EXPECT_NEAR(r[0].item<double>(), 1.0, 1e-12);
  EXPECT_NEAR(r[1].item<double>(), -1.0, 1e-12);
  // Ranks (0.5, 0.5, 2, 3) against (0, 1, 2, 3): 4.5 / sqrt(4.5 * 5).
  EXPECT_NEAR(r[2].item<double>(), 4.5 / std::sqrt(4.5 * 5.0), 1e-12);
}

TEST(PerturbationCurves, OnALinearModelTheTrueOrderBeatsRandomAndItsReverseDoesNot) {
  auto gen = make_generator(1, "curves");
  torch::Tensor w = torch::randn({2, 30}, gen) * 0.5;
  auto model = testing::make_linear(w, torch::zeros({2}));
  torch::Tensor x = torch::rand({40, 30}, gen);
  Attribution a;
  a.target = model->predict(x);
  a.values = x * w.index_select(0, a.target);  // exact contributions from a zero baseline
  PerturbationCurves del = perturbation_curves(*model, x, a, PerturbationCurveOptions().steps(10));
  EXPECT_GE(del.better_than_random_fraction(), 0.9);
  // The curve starts at p(x) and ends at p(baseline).
  torch::Tensor p = model->probabilities(x).gather(1, a.target.view({-1, 1})).squeeze(1).to(torch::kDouble);
  EXPECT_TRUE(torch::allclose(del.curve.select(1, 0), p, 1e-6, 1e-6));
  torch::Tensor p0 = model->probabilities(torch::zeros_like(x)).gather(1, a.target.view({-1, 1})).squeeze(1);
  EXPECT_TRUE(torch::allclose(del.curve.select(1, 10), p0.to(torch::kDouble), 1e-6, 1e-6));
  PerturbationCurves ins = perturbation_curves(*model, x, a, PerturbationCurveOptions().insertion(true).steps(10));
  EXPECT_GE(ins.better_than_random_fraction(), 0.9);
  Attribution reversed = a;
  reversed.values = -a.values;
  EXPECT_LE(
      perturbation_curves(*model, x, reversed, PerturbationCurveOptions().steps(10)).better_than_random_fraction(),
      0.1);
  // Same seed, same random curve.
  EXPECT_TRUE(
      torch::equal(perturbation_curves(*model, x, a, PerturbationCurveOptions().steps(10)).random_auc, del.random_auc));
  EXPECT_EQ(del.to_json()["kind"], "deletion");
}

TEST(RandomisationCheck, FlagsAnEdgeMapAndPassesSaliencyWithoutChangingTheModel) {
  auto cnn = testing::trained_bars_cnn();
  const std::vector<torch::Tensor> before = cnn->parameters();
  std::vector<torch::Tensor> copies;
  for (const auto& p : before) copies.push_back(p.clone());
  Dataset d = testing::make_bar_images(8, 4, 2);
  EdgeMap edges;
  RandomisationCheck e = model_randomisation_check(*cnn, edges, d.x);
  EXPECT_FALSE(e.passed);
  EXPECT_NEAR(e.final_similarity, 1.0, 1e-9);
  EXPECT_EQ(e.layers.size(), e.similarity.size());
  EXPECT_GE(e.layers.size(), 2u);
  Saliency sal(SaliencyOptions().absolute(false));
  RandomisationCheck s = model_randomisation_check(*cnn, sal, d.x);
  EXPECT_TRUE(s.passed) << s.to_json().dump();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_TRUE(torch::equal(cnn->parameters()[i], copies[i]));
}

TEST(AttributionMetrics, OnALinearModelTheExactMapIsFaithfulAndSteadyAndARandomOneIsNot) {
  torch::Tensor w = torch::randn({2, 20}, torch::Generator(at::detail::createCPUGenerator(11)));
  auto model = testing::make_linear(w, torch::zeros({2}));
  torch::Tensor x = torch::rand({6, 20}, torch::Generator(at::detail::createCPUGenerator(12)));
  Attribution exact;  // IG from zero = x * w, exact on a linear model
  exact.target = torch::zeros({6}, torch::kLong);
  exact.values = x * w[0];
  Attribution grad = exact;  // saliency: w
  grad.values = w[0].expand({6, 20}).contiguous();
  Attribution noise = exact;
  noise.values = torch::randn({6, 20}, torch::Generator(at::detail::createCPUGenerator(13)));

  torch::Tensor fc = faithfulness_correlation(*model, x, exact, FaithfulnessOptions().subsets(30).subset_fraction(0.3));
  EXPECT_GT(fc.min().item<double>(), 0.9999) << fc;
  EXPECT_LT(faithfulness_correlation(*model, x, noise).abs().mean().item<double>(), 0.5);
  // A batch equals its samples one at a time.
  Attribution one = exact;
  one.values = exact.values.narrow(0, 2, 1);
  one.target = exact.target.narrow(0, 2, 1);
  EXPECT_DOUBLE_EQ(faithfulness_correlation(*model, x.narrow(0, 2, 1), one)[0].item<double>(),
                   faithfulness_correlation(*model, x, exact)[2].item<double>());

  // f(x) - f(x - I) = I.w exactly: the gradient has zero infidelity, noise a lot.
  EXPECT_LT(infidelity(*model, x, grad).max().item<double>(), 1e-6);
  EXPECT_GT(infidelity(*model, x, noise).mean().item<double>(), 0.5);

  // The gradient of a linear model never moves; IG's map moves with the input.
  Saliency sal(SaliencyOptions().absolute(false));
  Attribution s = sal.explain(*model, x, exact.target);
  EXPECT_LT(max_sensitivity(*model, sal, x, s).max().item<double>(), 1e-6);
  IntegratedGradients ig(IntegratedGradientsOptions().steps(4));
  Attribution a = ig.explain(*model, x, exact.target);
  torch::Tensor ms = max_sensitivity(*model, ig, x, a, SensitivityOptions().radius(0.05));
  EXPECT_GT(ms.min().item<double>(), 0.0);
  EXPECT_LT(ms.max().item<double>(), 1.0);

  torch::Tensor maps = torch::zeros({3, 10});
  maps[0][4] = 2.0;   // one feature: Gini (d - 1) / d
  maps[1].fill_(0.3);  // all equal: 0
  torch::Tensor sp = sparseness(maps);
  EXPECT_NEAR(sp[0].item<double>(), 0.9, 1e-12);
  EXPECT_NEAR(sp[1].item<double>(), 0.0, 1e-12);
  EXPECT_EQ(sp[2].item<double>(), 0.0);
  EXPECT_EQ(testing::error_kind_of([&] { faithfulness_correlation(*model, x.narrow(0, 0, 2), exact); }),
            ErrorKind::ShapeMismatch);
}

TEST(ExplanationQuality, FashionMnistCnnDeletionBeatsRandomAndGradientsPassTheSanityCheck) {
  if (!testing::have_fashion_mnist()) GTEST_SKIP() << "Fashion-MNIST is not installed";
  Dataset train_split = load_dataset(DataSpec("fashion-mnist").split("train").limit(3000));
  Dataset test_split = load_dataset(DataSpec("fashion-mnist").split("test").limit(200));
  seed_everything(3);
  auto model = build_architecture(ArchitectureOptions("cnn", {1, 28, 28}, 10));
  train(*model, train_split, nullptr, TrainOptions().epochs(3).batch_size(64).lr(2e-3));
  RecordProperty(
      "test_accuracy",
      std::to_string(model->predict(test_split.x).eq(test_split.y).to(torch::kDouble).mean().item<double>()));
  IntegratedGradients ig(IntegratedGradientsOptions().steps(16));
  NoiseTunnel sg(std::make_shared<Saliency>(SaliencyOptions().absolute(false)), NoiseTunnelOptions().samples(16));
  for (Explainer* e : std::vector<Explainer*>{&ig, &sg}) {
    Attribution a = e->explain(*model, test_split.x);
    PerturbationCurves del = perturbation_curves(*model, test_split.x, a, PerturbationCurveOptions().steps(20));
    RecordProperty(e->name() + "_deletion_better_than_random", std::to_string(del.better_than_random_fraction()));
    RecordProperty(e->name() + "_deletion_auc", std::to_string(del.auc.mean().item<double>()));
    RecordProperty(e->name() + "_random_deletion_auc", std::to_string(del.random_auc.mean().item<double>()));
    EXPECT_GE(del.better_than_random_fraction(), 0.9) << e->name() << " " << del.to_json().dump();
  }
  torch::Tensor few = test_split.x.narrow(0, 0, 32);
  Saliency sal(SaliencyOptions().absolute(false));
  EdgeMap edges;
  for (Explainer* e : std::vector<Explainer*>{&sal, &ig, &edges}) {
    RandomisationCheck s = model_randomisation_check(*model, *e, few);
    RecordProperty(e->name() + "_sanity_final_similarity", std::to_string(s.final_similarity));
    std::cout << s.to_json().dump() << "\n";
    EXPECT_EQ(s.passed, e != &edges) << s.to_json().dump();
  }
}

}  // namespace
}  // namespace aegis
