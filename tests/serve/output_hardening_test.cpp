#include "aegis/serve/output_hardening.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"

namespace aegis::serve {
namespace {

torch::Tensor probs() { return torch::tensor({{0.1f, 0.6f, 0.3f}, {0.55f, 0.05f, 0.4f}}); }

TEST(OutputHardening, ModesReleaseOnlyWhatTheySay) {
  std::mt19937_64 rng(1);
  auto full = harden_output(probs(), OutputOptions(), rng);
  EXPECT_TRUE(torch::allclose(full.scores, probs()));
  EXPECT_TRUE(torch::equal(full.labels, torch::tensor({1, 0}, torch::kLong)));

  auto top = harden_output(probs(), OutputOptions().mode(OutputMode::TopK).top_k(2), rng);
  EXPECT_TRUE(torch::equal(top.classes, torch::tensor({{1, 2}, {0, 2}}, torch::kLong)));
  EXPECT_TRUE(torch::allclose(top.scores, torch::tensor({{0.6f, 0.3f}, {0.55f, 0.4f}})));

  auto rounded =
      harden_output(torch::tensor({{0.123f, 0.877f}}), OutputOptions().mode(OutputMode::Rounded).decimals(1), rng);
  EXPECT_TRUE(torch::allclose(rounded.scores, torch::tensor({{0.1f, 0.9f}})));

  auto label = harden_output(probs(), OutputOptions().mode(OutputMode::Label), rng);
  EXPECT_FALSE(label.scores.defined());
  auto j = label.to_json_outputs();
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["name"], "label");
  EXPECT_EQ(j[0]["data"], nlohmann::json({1, 0}));
}

TEST(OutputHardening, LaplaceNoiseHasTheStatedScale) {
  // Laplace(b = 2/epsilon) on both scores of [0.5, 0.5]: label 1 wins unless
  // both scores clip to the same bound (P = 2 * (e^-1 / 2)^2 = 0.068, ties
  // go to 0), so P(label 1) = (1 - 0.068) / 2 = 0.466.
  const double eps = 4.0;
  OutputOptions o = OutputOptions().noise(NoiseMechanism::Laplace, eps);
  EXPECT_DOUBLE_EQ(o.noise_scale(), 0.5);
  std::mt19937_64 rng(7);
  torch::Tensor p = torch::full({4000, 2}, 0.5f);
  auto out = harden_output(p, o, rng);
  // Rows stay probability vectors.
  EXPECT_TRUE(torch::allclose(out.scores.sum(1), torch::ones({4000}), 1e-5, 1e-5));
  EXPECT_GE(out.scores.min().item<double>(), 0.0);
  const double flipped = out.labels.to(torch::kFloat).mean().item<double>();
  EXPECT_NEAR(flipped, 0.466, 0.03);
  // Smaller noise (large epsilon) keeps a clear winner most of the time.
  torch::Tensor clear = torch::tensor({{0.9f, 0.1f}}).repeat({2000, 1});
  auto small = harden_output(clear, OutputOptions().noise(NoiseMechanism::Laplace, 50.0), rng);
  EXPECT_GT((small.labels == 0).to(torch::kFloat).mean().item<double>(), 0.95);
}

TEST(OutputHardening, GaussianScaleAndValidation) {
  OutputOptions g = OutputOptions().noise(NoiseMechanism::Gaussian, 0.5, 1e-5);
  EXPECT_NEAR(g.noise_scale(), std::sqrt(2.0) * std::sqrt(2 * std::log(1.25e5)) / 0.5, 1e-12);
  EXPECT_NO_THROW(g.validate());
  EXPECT_THROW(OutputOptions().noise(NoiseMechanism::Gaussian, 2.0).validate(), Error);
  EXPECT_THROW(OutputOptions().noise(NoiseMechanism::Laplace, 0.0).validate(), Error);
  EXPECT_THROW(OutputOptions().top_k(0).validate(), Error);
  EXPECT_THROW(parse_output_mode("everything"), Error);
  auto j = g.to_json();
  EXPECT_EQ(j["noise"], "gaussian");
  EXPECT_EQ(j["epsilon"], 0.5);
}

}  // namespace
}  // namespace aegis::serve
