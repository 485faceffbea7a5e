#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "aegis/core/error.h"
#include "aegis/core/random.h"
#include "aegis/defenses/certification/binomial.h"
#include "aegis/defenses/certification/randomized_smoothing.h"
#include "aegis/defenses/certification/smoothed_attack.h"
#include "support/test_support.h"

namespace aegis {
namespace {

TEST(Binomial, CdfMatchesExactValues) {
  EXPECT_NEAR(binomial_cdf(2, 4, 0.5), 11.0 / 16.0, 1e-14);
  EXPECT_NEAR(binomial_cdf(0, 10, 0.1), std::pow(0.9, 10), 1e-14);
  EXPECT_DOUBLE_EQ(binomial_cdf(10, 10, 0.3), 1.0);
  EXPECT_DOUBLE_EQ(binomial_cdf(-1, 10, 0.3), 0.0);
  EXPECT_NEAR(binomial_cdf(499, 1000, 0.5), 0.5 - 0.5 * 0.025225018178360,
              1e-12);  // symmetric minus half the mode
}

TEST(Binomial, ClopperPearsonMatchesClosedFormsAndTables) {
  // All successes: P(X = n | p) = p^n = alpha.
  for (int64_t n : {1, 10, 100, 1000, 100000}) {
    EXPECT_NEAR(clopper_pearson_lower(n, n, 0.001), std::pow(0.001, 1.0 / double(n)), 1e-12) << n;
    EXPECT_NEAR(clopper_pearson_upper(0, n, 0.001), 1 - std::pow(0.001, 1.0 / double(n)), 1e-12) << n;
  }
  EXPECT_EQ(clopper_pearson_lower(0, 50, 0.05), 0.0);
  EXPECT_EQ(clopper_pearson_upper(50, 50, 0.05), 1.0);
  // The exact 95% interval for 5 of 10 is [0.187086, 0.812914] (two-sided:
  // alpha/2 each side).
  EXPECT_NEAR(clopper_pearson_lower(5, 10, 0.025), 0.1870860284474045, 1e-9);
  EXPECT_NEAR(clopper_pearson_upper(5, 10, 0.025), 0.8129139715525955, 1e-9);
  // ... for 1 of 10: lower = 1 - 0.975^(1/10); upper solves (1-p)^10 + 10 p (1-p)^9 = 0.025.
  EXPECT_NEAR(clopper_pearson_lower(1, 10, 0.025), 1 - std::pow(0.975, 0.1), 1e-12);
  EXPECT_NEAR(clopper_pearson_upper(1, 10, 0.025), 0.4450161170281953, 1e-10);
  // Symmetry and monotonicity over many counts.
  for (int64_t k = 0; k <= 40; k += 3) {
    EXPECT_NEAR(clopper_pearson_lower(k, 40, 0.01), 1 - clopper_pearson_upper(40 - k, 40, 0.01), 1e-12);
    if (k > 0) {
      EXPECT_LT(clopper_pearson_lower(k - 1, 40, 0.01), clopper_pearson_lower(k, 40, 0.01));
    }
    EXPECT_LE(clopper_pearson_lower(k, 40, 0.01), double(k) / 40);
  }
  EXPECT_THROW(clopper_pearson_lower(11, 10, 0.01), Error);
  EXPECT_THROW(clopper_pearson_lower(1, 10, 0), Error);
}

TEST(Binomial, NormalQuantile) {
  EXPECT_NEAR(normal_quantile(0.5), 0.0, 1e-12);
  EXPECT_NEAR(normal_quantile(0.975), 1.959963984540054, 1e-11);
  EXPECT_NEAR(normal_quantile(0.001), -3.090232306167813, 1e-11);
  EXPECT_NEAR(normal_quantile(0.8413447460685429), 1.0, 1e-11);
  EXPECT_THROW(normal_quantile(1.0), Error);
}

TEST(RandomizedSmoothing, ConstantModelGetsTheClosedFormRadius) {
  // Predicts class 1 everywhere: nA = n always, pA_lower = alpha^(1/n).
  auto model = testing::make_linear(torch::zeros({3, 4}), torch::tensor({0.0f, 5.0f, 0.0f}));
  torch::Tensor x = torch::rand({3, 4});
  auto o = RandomizedSmoothingOptions(0.5).n0(10).n(200).alpha(0.01);
  SmoothingCertificate c = certify_smoothed(*model, x, torch::tensor({1, 1, 0}), o);
  double expect = 0.5 * normal_quantile(std::pow(0.01, 1.0 / 200));
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(c.prediction[i].item<int64_t>(), 1);
    EXPECT_NEAR(c.radius[i].item<double>(), expect, 1e-9);
  }
  EXPECT_NEAR(c.certified_accuracy(0.0), 2.0 / 3, 1e-12);
  EXPECT_NEAR(c.certified_accuracy(expect + 1e-6), 0.0, 1e-12);
}

TEST(RandomizedSmoothing, LinearModelRadiusIsBelowButNearTheTrueDistance) {
  // f(x) = [x0 > 0.5]: the smoothed classifier's exact radius is |x0 - 0.5|.
  auto model = testing::make_linear(torch::tensor({{-1.0f, 0.0f}, {1.0f, 0.0f}}), torch::tensor({0.5f, -0.5f}));
  torch::Tensor x = torch::tensor({{0.9f, 0.1f}, {0.2f, 0.7f}, {0.62f, 0.5f}, {0.5f, 0.5f}});
  auto o = RandomizedSmoothingOptions(0.25).n0(50).n(20000).alpha(0.001).batch_size(5000).seed(3);
  SmoothingCertificate c = certify_smoothed(*model, x, torch::tensor({1, 0, 1, 1}), o);
  const double dist[] = {0.4, 0.3, 0.12};
  for (int i = 0; i < 3; ++i) {
    double r = c.radius[i].item<double>();
    EXPECT_LE(r, dist[i] + 1e-6) << i;  // sound (with probability 1 - alpha)
    EXPECT_GT(r, 0.8 * dist[i]) << i;   // and tight with many samples
    // And exactly sigma * Phi^-1(pA_lower).
    EXPECT_NEAR(r, 0.25 * normal_quantile(c.p_lower[i].item<double>()), 1e-12);
  }
  EXPECT_EQ(c.prediction[3].item<int64_t>(), -1);  // on the boundary: abstain
  EXPECT_DOUBLE_EQ(c.radius[3].item<double>(), 0.0);
  torch::Tensor p = predict_smoothed(*model, x, o);
  EXPECT_EQ(p[0].item<int64_t>(), 1);
  EXPECT_EQ(p[1].item<int64_t>(), 0);
  EXPECT_THROW(certify_smoothed(*model, x, {}, RandomizedSmoothingOptions(0)), Error);
}

TEST(SmoothedAttack, BreaksExactlyTheSamplesWithinEpsOfTheBoundaryAndNeverBeatsTheCertificate) {
  // f(x) = [x0 > 0.5] and Gaussian noise: the smoothed classifier is the same
  // rule, so a sample is robust at L2 eps exactly when |x0 - 0.5| > eps.
  auto model = testing::make_linear(torch::tensor({{-1.0f, 0.0f}, {1.0f, 0.0f}}), torch::tensor({0.5f, -0.5f}));
  torch::Tensor x = torch::tensor({{0.9f, 0.1f}, {0.75f, 0.3f}, {0.62f, 0.5f}, {0.2f, 0.7f}, {0.45f, 0.2f}});
  torch::Tensor y = torch::tensor({1, 1, 1, 0, 0});
  auto o = RandomizedSmoothingOptions(0.25).n0(50).n(2000).batch_size(2000).seed(5);
  const double eps = 0.2;
  SmoothedAttackResult a = attack_smoothed(model, x, y, o, SmoothedAttackOptions().eps(eps).steps(20).eot_samples(8));
  std::vector<bool> expected = {true, true, false, true, false};
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.robust[i].item<bool>(), expected[i]) << "sample " << i;
  EXPECT_DOUBLE_EQ(a.robust_accuracy, 0.6);
  EXPECT_DOUBLE_EQ(a.clean_accuracy, 1.0);
  // Within the ball, and the model untouched by the noise wrapper.
  EXPECT_LE(((a.x_adv - x).flatten(1).norm(2, 1) - eps).max().item<double>(), 1e-5);
  EXPECT_TRUE(torch::equal(model->predict(x), y));
  // The certificate is a lower bound of what the attack leaves.
  SmoothingCertificate c = certify_smoothed(*model, x, y, o);
  EXPECT_LE(c.certified_accuracy(eps), a.robust_accuracy);
  for (int i = 0; i < 5; ++i) {
    if (c.radius[i].item<double>() >= eps && c.prediction[i].item<int64_t>() == y[i].item<int64_t>()) {
      EXPECT_TRUE(a.robust[i].item<bool>()) << "certified sample " << i << " broken";
    }
  }
  EXPECT_THROW(attack_smoothed(model, x, y, o, SmoothedAttackOptions().eps(0)), Error);
}

}  // namespace
}  // namespace aegis
