// Counterfactuals against their closed forms on a linear model: the smallest
// L2 change from class a to class b is margin / ||w_a - w_b|| along
// w_b - w_a (the C&W search lands just past that boundary), the smallest L1
// change moves only the coordinate where |w_b - w_a| is largest (the elastic
// net finds it); both stay in the valid range, succeed, and leave the model
// as it was.

#include "aegis/explain/counterfactual.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "aegis/core/error.h"
#include "aegis/core/script_classifier.h"
#include "aegis/explain/registry.h"
#include "support/test_support.h"

namespace aegis {
namespace {

using testing::error_kind_of;
using testing::error_message_of;

struct TwoClassLinear {
  torch::Tensor w = torch::tensor({{1.0f, -1.0f, 0.5f, 0.0f}, {-0.5f, 1.0f, 0.0f, 0.2f}});
  torch::Tensor b = torch::tensor({0.1f, 0.0f});
  std::shared_ptr<ScriptClassifier> model = testing::make_linear(w, b);
  /// Samples in [0.35, 0.65] whose margin is clear of 0 but small enough that
  /// the nearest boundary point (and the L1 one) lies inside [0, 1].
  torch::Tensor x() const {
    torch::Tensor c = torch::rand({64, 4}, torch::Generator(at::detail::createCPUGenerator(5))) * 0.3 + 0.35;
    torch::Tensor z = torch::matmul(c, w.t()) + b;
    torch::Tensor m = (z.select(1, 0) - z.select(1, 1)).abs();
    return c.index({(m > 0.05) & (m < 0.5)}).narrow(0, 0, 8);
  }
};

TEST(Counterfactual, L2LandsOnTheDecisionBoundaryAlongTheWeightDifference) {
  TwoClassLinear lin;
  torch::Tensor x = lin.x();
  ASSERT_EQ(x.size(0), 8);
  std::vector<torch::Tensor> before;
  for (const auto& t : lin.model->parameters()) before.push_back(t.clone());

  CounterfactualResult r = Counterfactual().find(*lin.model, x);
  torch::Tensor from = lin.model->predict(x);
  EXPECT_TRUE(torch::equal(r.attribution.target, from));
  EXPECT_TRUE(torch::equal(r.to, 1 - from)) << "two classes: the runner-up is the other one";
  EXPECT_TRUE(r.success.all().item<bool>());
  EXPECT_TRUE(torch::equal(r.predicted, r.to));
  EXPECT_GE(r.counterfactual.min().item<float>(), 0.0f);
  EXPECT_LE(r.counterfactual.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::allclose(r.attribution.values, r.counterfactual - x));
  EXPECT_EQ(r.attribution.method, "counterfactual");

  torch::Tensor z = torch::matmul(x, lin.w.t()) + lin.b;
  torch::Tensor margin = (z.select(1, 0) - z.select(1, 1)).abs();
  const double wd = (lin.w[0] - lin.w[1]).norm().item<double>();
  for (int64_t i = 0; i < x.size(0); ++i) {
    const double closed = margin[i].item<double>() / wd;
    EXPECT_GE(r.l2[i].item<double>(), closed * (1 - 1e-3)) << i << ": closer than the boundary?";
    EXPECT_LE(r.l2[i].item<double>(), closed * 1.05 + 1e-3) << i;
    // Along w_to - w_from.
    torch::Tensor dir = lin.w[r.to[i].item<int64_t>()] - lin.w[from[i].item<int64_t>()];
    const double cosine = (torch::dot(r.attribution.values[i], dir) / (r.l2[i] * dir.norm())).item<double>();
    EXPECT_GT(cosine, 0.99) << i;
    EXPECT_NEAR(r.l1[i].item<double>(), r.attribution.values[i].abs().sum().item<double>(), 1e-6);
  }
  auto params = lin.model->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::equal(params[i], before[i]));

  nlohmann::json j = r.to_json();
  EXPECT_EQ(j["success_rate"], 1.0);
  EXPECT_EQ(j["samples"][0]["to"], r.to[0].item<int64_t>());
  EXPECT_TRUE(j["samples"][0]["success"].get<bool>());
}

TEST(Counterfactual, L1ChangesOnlyTheMostInfluentialFeature) {
  TwoClassLinear lin;
  torch::Tensor x = lin.x();
  CounterfactualResult r = Counterfactual(CounterfactualOptions().norm(Norm::L1)).find(*lin.model, x);
  EXPECT_TRUE(r.success.all().item<bool>());
  EXPECT_GE(r.counterfactual.min().item<float>(), 0.0f);
  EXPECT_LE(r.counterfactual.max().item<float>(), 1.0f);
  torch::Tensor z = torch::matmul(x, lin.w.t()) + lin.b;
  torch::Tensor margin = (z.select(1, 0) - z.select(1, 1)).abs();
  for (int64_t i = 0; i < x.size(0); ++i) {
    torch::Tensor dir = lin.w[r.to[i].item<int64_t>()] - lin.w[r.attribution.target[i].item<int64_t>()];
    const int64_t top = dir.abs().argmax().item<int64_t>();
    const double closed = margin[i].item<double>() / dir.abs().max().item<double>();  // the smallest L1 change
    EXPECT_GE(r.l1[i].item<double>(), closed * (1 - 1e-3)) << i;
    EXPECT_LE(r.l1[i].item<double>(), closed * 1.3 + 1e-3) << i;
    EXPECT_GT(r.attribution.values[i][top].abs().item<double>(), 0.8 * r.l1[i].item<double>())
        << i << ": the change should sit on feature " << top << ", got " << r.attribution.values[i];
  }
  // The L2 counterfactual spreads over every feature the model uses.
  CounterfactualResult l2 = Counterfactual().find(*lin.model, x);
  EXPECT_GT(((l2.attribution.values.abs() > 1e-3).sum(1) >= 3).sum().item<int64_t>(), 6);
}

TEST(Counterfactual, FixedClassBatchesAndRefusals) {
  // Three classes: moving to a fixed class; a batch equals its samples one at a time.
  torch::Tensor w = torch::tensor({{1.0f, 0.0f}, {0.0f, 1.0f}, {-1.0f, -1.0f}});
  auto model = testing::make_linear(w, torch::tensor({0.0f, 0.0f, 0.9f}));
  torch::Tensor x = torch::tensor({{0.7f, 0.2f}, {0.3f, 0.6f}, {0.1f, 0.1f}});
  Counterfactual to2(CounterfactualOptions().to(2));
  CounterfactualResult r = to2.find(*model, x);
  EXPECT_TRUE(torch::equal(r.to, torch::full({3}, 2, torch::kLong)));
  EXPECT_TRUE(r.success.all().item<bool>());
  EXPECT_EQ(r.l2[2].item<float>(), 0.0f) << "a sample already in class 2 needs no change";
  for (int64_t i = 0; i < 3; ++i) {
    CounterfactualResult one = to2.find(*model, x.narrow(0, i, 1));
    EXPECT_TRUE(torch::allclose(one.counterfactual, r.counterfactual.narrow(0, i, 1), 1e-5, 1e-6)) << i;
  }
  // The Explainer interface gives the change as the attribution.
  Attribution a = make_explainer("counterfactual", {{"to", 2}, {"norm", "l2"}})->explain(*model, x);
  EXPECT_TRUE(torch::allclose(a.values, r.attribution.values, 1e-5, 1e-6));

  EXPECT_EQ(error_kind_of([&] { Counterfactual(CounterfactualOptions().to(3)).find(*model, x); }),
            ErrorKind::InvalidArgument);
  EXPECT_NE(error_message_of([&] { Counterfactual(CounterfactualOptions().norm(Norm::Linf)); }).find("l1"),
            std::string::npos);
  EXPECT_EQ(error_kind_of([&] { Counterfactual(CounterfactualOptions().steps(0)); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { make_explainer("counterfactual", {{"to", "best"}}); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { make_explainer("counterfactual", {{"window", 3}}); }), ErrorKind::InvalidArgument);
  EXPECT_EQ(error_kind_of([&] { Counterfactual().find(*model, x * 2); }), ErrorKind::InvalidArgument)
      << "inputs outside the valid range";
}

}  // namespace
}  // namespace aegis
