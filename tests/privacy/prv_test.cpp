// The PRV accountant against the values Opacus publishes for it (computed with
// Microsoft's prv_accountant), against the exact privacy curve of the Gaussian
// mechanism, against TF Privacy's PLD accountant, and against RDP.

#include "aegis/privacy/prv.h"

#include <gtest/gtest.h>

#include <cmath>

#include "aegis/core/error.h"
#include "aegis/privacy/rdp.h"

namespace aegis {
namespace {

// opacus/tests/prv_accountant.py msr_values ("Computed from
// https://github.com/microsoft/prv_accountant"): (sigma, q, steps) -> epsilon
// at delta = 1e-6, eps_error 0.01, delta_error delta / 1000; Opacus's
// get_epsilon returns the upper bound and checks it to 5 places. The subset
// here runs in about a second; the whole table (up to 100000 steps) agrees to
// better than 1e-6 relative as well.
struct Published {
  double sigma, q;
  int64_t steps;
  double eps;
};
constexpr Published kMsrValues[] = {
    {0.8, 0.001, 100, 0.270403364058018680360362395731},  {1.5, 0.001, 100, 0.0393694193095203287535710501288},
    {2.0, 0.001, 100, 0.0291045369484074882560076247273}, {3.0, 0.001, 100, 0.0215200934390882663016508757892},
    {1.5, 0.05, 100, 1.95385313568420015961635272106},    {2.0, 0.05, 100, 1.28363737962406521120328761754},
    {3.0, 0.05, 100, 0.767933789666825572517439013609},   {2.0, 0.2, 100, 5.67205560882372950004537415225},
    {3.0, 0.2, 100, 3.38122051022184422208738396876},     {2.0, 0.001, 1000, 0.0712187825381152272985474382949},
    {3.0, 0.05, 1000, 2.52757432605973830774814814504},
};

TEST(Prv, OpacusPublishedValues) {
  for (const Published& p : kMsrValues) {
    PrvEpsilon e = prv_epsilon({{p.sigma, p.q, p.steps}}, 1e-6);
    EXPECT_NEAR(e.upper, p.eps, 1e-6 * p.eps) << p.sigma << " " << p.q << " " << p.steps;
    // The band the error analysis gives: +-eps_error around the estimate, widened by delta_error.
    EXPECT_LT(e.lower, e.estimate);
    EXPECT_LT(e.estimate, e.upper);
    EXPECT_NEAR(e.upper - e.estimate, 0.01, 0.002);
  }
}

/// delta(eps) of the Gaussian mechanism composed n times at noise sigma:
/// Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2), mu = sqrt(n) / sigma
/// (Balle and Wang 2018, Thm. 8), inverted by bisection.
double gaussian_exact_epsilon(double sigma, int64_t n, double delta) {
  const double mu = std::sqrt(double(n)) / sigma;
  auto phi = [](double x) { return 0.5 * std::erfc(-x / std::sqrt(2.0)); };
  auto d = [&](double eps) { return phi(-eps / mu + mu / 2) - std::exp(eps) * phi(-eps / mu - mu / 2); };
  double lo = 0, hi = 100;
  for (int i = 0; i < 200; ++i) {
    const double mid = 0.5 * (lo + hi);
    (d(mid) > delta ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

TEST(Prv, BracketsTheExactGaussianCurve) {
  // q = 1 is the plain Gaussian mechanism, whose (eps, delta) curve is exact.
  for (auto [sigma, n] : {std::pair{2.0, int64_t(10)}, {5.0, int64_t(100)}, {20.0, int64_t(1000)}}) {
    const double exact = gaussian_exact_epsilon(sigma, n, 1e-5);
    PrvEpsilon e = prv_epsilon({{sigma, 1.0, n}}, 1e-5);
    EXPECT_LE(e.lower, exact) << sigma;
    EXPECT_GE(e.upper, exact) << sigma;
    EXPECT_NEAR(e.estimate, exact, 1e-3) << sigma;
    EXPECT_LT(e.upper, rdp_epsilon({{sigma, 1.0, n}}, 1e-5).epsilon) << sigma;
  }
}

TEST(Prv, AgreesWithTfPrivacyPld) {
  // tensorflow_privacy compute_dp_sgd_privacy_test.py
  // test_compute_dp_sgd_example_privacy, no microbatching, Poisson rate 1e-2,
  // 1.2 epochs -> ceil(1.2 / 0.01) = 120 steps, sigma 0.7, delta 1e-5:
  // PLD accountant 2.4612381 (RDP 3.2392676 there). A different numerical
  // method with its own discretisation: it must fall inside our bounds and
  // close to our estimate.
  PrvEpsilon e = prv_epsilon({{0.7, 0.01, 120}}, 1e-5);
  EXPECT_LE(e.lower, 2.4612381);
  EXPECT_GE(e.upper, 2.4612381);
  EXPECT_NEAR(e.estimate, 2.4612381, 1e-4);
  EXPECT_LT(e.upper, 3.2392676);
}

TEST(Prv, TighterThanRdpOnDpSgdSettings) {
  struct Setting {
    double sigma, q;
    int64_t steps;
    double delta;
  };
  // MNIST (Abadi et al.), the Opacus test setting, a short and a noisy run.
  for (const Setting& s : {Setting{1.1, 256 / 60000.0, 14063, 1e-5}, Setting{1.5, 0.04, 2250, 1e-5},
                           Setting{0.8, 0.01, 500, 1e-6}, Setting{4.0, 0.02, 300, 1e-5}}) {
    const double prv = prv_epsilon({{s.sigma, s.q, s.steps}}, s.delta).upper;
    const double rdp = rdp_epsilon({{s.sigma, s.q, s.steps}}, s.delta).epsilon;
    EXPECT_LE(prv, rdp) << s.sigma << " " << s.q;
    EXPECT_GT(prv, 0.6 * rdp) << s.sigma << " " << s.q;  // tighter, not wildly different
  }
}

TEST(Prv, SegmentsCompose) {
  // Two identical segments are one segment of their total length.
  const PrvEpsilon whole = prv_epsilon({{1.0, 0.02, 200}}, 1e-5);
  const PrvEpsilon split = prv_epsilon({{1.0, 0.02, 80}, {1.0, 0.02, 120}}, 1e-5);
  EXPECT_NEAR(split.upper, whole.upper, 1e-6 * whole.upper);
  EXPECT_NEAR(split.estimate, whole.estimate, 1e-6 * whole.estimate);
  // A mixed history lies between its two pure ones.
  const double lo = prv_epsilon({{2.0, 0.02, 200}}, 1e-5).estimate;
  const double mixed = prv_epsilon({{1.0, 0.02, 100}, {2.0, 0.02, 100}}, 1e-5).estimate;
  EXPECT_LT(lo, mixed);
  EXPECT_LT(mixed, whole.estimate);
  const PrvEpsilon none = prv_epsilon({}, 1e-5);
  EXPECT_EQ(none.upper, 0);
}

TEST(Prv, MonotoneInStepsRateAndNoise) {
  auto est = [](double sigma, double q, int64_t steps) { return prv_epsilon({{sigma, q, steps}}, 1e-5).estimate; };
  EXPECT_LT(est(1.0, 0.01, 50), est(1.0, 0.01, 200));
  EXPECT_LT(est(1.0, 0.01, 200), est(1.0, 0.03, 200));
  EXPECT_GT(est(1.0, 0.01, 200), est(1.5, 0.01, 200));
}

TEST(Prv, CdfIsTheSubsampledGaussianLoss) {
  // At q = 1 the loss of N(1, s^2) against N(0, s^2) is N(1/(2 s^2), 1/s^2).
  const double s = 1.3;
  for (double t : {-1.0, 0.0, 0.3, 2.0}) {
    const double expected = 0.5 * std::erfc(-(t - 0.5 / (s * s)) * s / std::sqrt(2.0));
    EXPECT_NEAR(subsampled_gaussian_prv_cdf(1.0, s, t), expected, 1e-14);
  }
  // Below log(1 - q) the loss cannot go; the CDF rises to 1.
  EXPECT_EQ(subsampled_gaussian_prv_cdf(0.1, 1.0, std::log(0.9) - 1e-9), 0.0);
  EXPECT_GT(subsampled_gaussian_prv_cdf(0.1, 1.0, 0.0), 0.3);
  EXPECT_NEAR(subsampled_gaussian_prv_cdf(0.1, 1.0, 50.0), 1.0, 1e-12);
}

TEST(Prv, RejectsBadArgumentsAndOversizedGrids) {
  EXPECT_THROW(prv_epsilon({{1.0, 0.0, 10}}, 1e-5), Error);
  EXPECT_THROW(prv_epsilon({{1.0, 1.5, 10}}, 1e-5), Error);
  EXPECT_THROW(prv_epsilon({{0.0, 0.1, 10}}, 1e-5), Error);
  EXPECT_THROW(prv_epsilon({{1.0, 0.1, 10}}, 0.0), Error);
  EXPECT_THROW(prv_epsilon({{1.0, 0.1, 10}}, 1e-5, PrvOptions().eps_error(0)), Error);
  EXPECT_THROW(prv_epsilon({{1.0, 0.1, 10}}, 1e-5, PrvOptions().delta_error(1e-4)), Error);
  try {
    prv_epsilon({{1.0, 0.1, 1000}}, 1e-5, PrvOptions().max_grid_points(1000));
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
    EXPECT_NE(std::string(e.what()).find("eps_error"), std::string::npos);
  }
}

}  // namespace
}  // namespace aegis
