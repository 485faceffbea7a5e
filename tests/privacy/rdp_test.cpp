// RDP of the sampled Gaussian mechanism against the published test values of
// Opacus and TensorFlow Privacy and against an independent multi-precision
// computation; then the closed forms and invariants.
//
// The "mpmath" values below come from a 20-line script that integrates
// A_alpha = E_{z ~ N(0, s^2)} [((1 - q) + q exp((2z - 1) / (2 s^2)))^alpha]
// numerically with mpmath.quad at 40 digits (no series, no log-space tricks),
// then applies the conversion by hand: run with Debian's python3-mpmath,
//   log_a = mp.log(mp.quad(f, [-inf, -10s, 0, 1/2, 10s + a, 20 s^2 a + 10, inf], maxdegree=10))
//   rdp = steps * log_a / (a - 1)
//   eps = min over Opacus's orders of rdp - (log(delta) + log(a)) / (a - 1) + log((a - 1) / a)

#include "aegis/privacy/rdp.h"

#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "aegis/core/error.h"

namespace aegis {
namespace {

// TF Privacy's compute_dp_sgd_privacy orders.
std::vector<double> tf_privacy_orders() {
  std::vector<double> orders = {1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5};
  for (int a = 5; a < 64; ++a) orders.push_back(a);
  for (double a : {128., 256., 512.}) orders.push_back(a);
  return orders;
}

void expect_rel(double actual, double expected, double rel) {
  EXPECT_NEAR(actual, expected, rel * std::fabs(expected)) << "expected " << expected;
}

TEST(Rdp, DefaultOrdersAreOpacus) {
  // Opacus RDPAccountant.DEFAULT_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)).
  const std::vector<double>& o = default_rdp_orders();
  ASSERT_EQ(o.size(), 99u + 52u);
  EXPECT_DOUBLE_EQ(o.front(), 1.1);
  EXPECT_DOUBLE_EQ(o[98], 10.9);
  EXPECT_DOUBLE_EQ(o[99], 12.0);
  EXPECT_DOUBLE_EQ(o.back(), 63.0);
}

TEST(Rdp, OpacusPublishedEpsilon) {
  // opacus/tests/accountants_test.py test_rdp_accountant: sigma 1.5, q 0.04,
  // int(90 / 0.04) = 2250 steps, delta 1e-5 -> 7.32911117143 (assertAlmostEqual,
  // 7 places). mpmath: 7.3291111714842 at order 3.9.
  RdpEpsilon e = rdp_epsilon({{1.5, 0.04, 2250}}, 1e-5);
  expect_rel(e.epsilon, 7.32911117143, 1e-9);
  EXPECT_DOUBLE_EQ(e.order, 3.9);
}

TEST(Rdp, TfPrivacyPublishedEpsilons) {
  // tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py
  // test_compute_dp_sgd_privacy: (n, batch, sigma, epochs, delta) -> (eps, order)
  // with steps = ceil(epochs * n / batch), q = batch / n, TF's order list.
  struct Case {
    double n, batch, sigma, epochs, delta, eps, order;
  };
  for (const Case& c : {Case{60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19.0},
                        Case{100000, 100, 1.0, 30, 1e-7, 1.4154988495444842, 13.0},
                        Case{1e8, 1024, 0.1, 10, 1e-7, 5907982.3113978775, 1.25}}) {
    const auto steps = int64_t(std::ceil(c.epochs * c.n / c.batch));
    RdpEpsilon e = rdp_epsilon({{c.sigma, c.batch / c.n, steps}}, c.delta, tf_privacy_orders());
    expect_rel(e.epsilon, c.eps, 1e-9);
    EXPECT_EQ(e.order, c.order);
  }
}

TEST(Rdp, TfPrivacyPublishedEpsilonsWithTheOldConversion) {
  // compute_noise_from_budget_test.py (written against the Mironov 2017
  // conversion): target eps 0.941870567 for (60000, 150, 15 epochs, 1e-5) gives
  // sigma 1.3, and 1.70928734 for (100000, 100, 30 epochs, 1e-7) gives sigma 1.0,
  // i.e. those are the old-conversion epsilons at those sigmas.
  RdpEpsilon a = rdp_epsilon({{1.3, 150 / 60000.0, 6000}}, 1e-5, tf_privacy_orders(), RdpConversion::Mironov2017);
  expect_rel(a.epsilon, 0.941870567, 1e-8);
  RdpEpsilon b = rdp_epsilon({{1.0, 100 / 100000.0, 30000}}, 1e-7, tf_privacy_orders(), RdpConversion::Mironov2017);
  expect_rel(b.epsilon, 1.70928734, 1e-8);
}

TEST(Rdp, MnistTutorialAnchor) {
  // Abadi et al. 2016 / TF Privacy MNIST tutorial: 60000 examples, batch 256,
  // sigma 1.1, 60 epochs (ceil(60 * 60000 / 256) = 14063 steps), delta 1e-5:
  // "epsilon 3.01" with the old conversion. mpmath: 3.0083810468338 (order 8.8)
  // old, 2.5966555286809 (order 8.1) with Balle et al. 2020.
  const std::vector<DpSegment> h = {{1.1, 256 / 60000.0, 14063}};
  RdpEpsilon old = rdp_epsilon(h, 1e-5, default_rdp_orders(), RdpConversion::Mironov2017);
  EXPECT_NEAR(old.epsilon, 3.01, 0.005);
  expect_rel(old.epsilon, 3.0083810468338, 1e-9);
  EXPECT_DOUBLE_EQ(old.order, 8.8);
  RdpEpsilon now = rdp_epsilon(h, 1e-5);
  expect_rel(now.epsilon, 2.5966555286809, 1e-9);
  EXPECT_DOUBLE_EQ(now.order, 8.1);
}

TEST(Rdp, PerOrderValuesMatchPublishedAndMultiPrecision) {
  // tensorflow_privacy rdp_accountant_test.py test_compute_rdp_sequence:
  // compute_rdp(q=0.01, sigma=2.5, steps=50, orders [1.5, 2.5, 5, 50, 100, inf])
  // = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307, inf] (delta 1e-5 absolute);
  // mpmath gives the digits used here (1e-6 relative).
  const std::vector<double> orders = {1.5, 2.5, 5, 50, 100, INFINITY};
  const std::vector<double> rdp = compose_rdp({{2.5, 0.01, 50}}, orders);
  const std::vector<double> mp = {6.5007089718804e-4, 1.08541805691812e-3, 2.18075656230788e-3, 2.38460375387062e-2,
                                  167.416307548418};
  for (size_t k = 0; k < mp.size(); ++k) expect_rel(rdp[k], mp[k], 1e-6);
  EXPECT_TRUE(std::isinf(rdp[5]));
  // dp_accounting's rdp_privacy_accountant_test (newer) expects 6.70579741e-04
  // and 1.08548710e-03 at orders 1.5 and 2.5: it sums the fractional series'
  // terms without their signs, an upper bound; ours (the signed, exact series
  // of Mironov et al., as Opacus) must sit at or below it and equal the rest.
  EXPECT_LE(rdp[0], 6.70579741e-04);
  EXPECT_LE(rdp[1], 1.08548710e-03);
  expect_rel(rdp[2], 2.18075656e-03, 1e-6);
  expect_rel(rdp[3], 2.38460375e-02, 1e-6);
  expect_rel(rdp[4], 1.67416308e02, 1e-6);
  // test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) = 0.07737 (5 places);
  // mpmath 0.0773696848979587.
  expect_rel(compose_rdp({{2, 0.1, 10}}, {5})[0], 0.0773696848979587, 1e-9);
}

TEST(Rdp, LogAMatchesMultiPrecisionOnTfPrivacysParameters) {
  // The (q, sigma, order) triples of TF Privacy's test_compute_log_a_equals_mp
  // (which checks to 1e-4 relative); the values are our mpmath quadrature at 50
  // digits. The binomial sum and the fractional series agree to 1e-6 relative
  // even at q = 1e-7 (log A = 4e-8, where double rounding of A's terms shows).
  struct Case {
    double q, sigma, order, log_a;
  };
  for (const Case& c : {Case{1e-7, 0.1, 1.01, 4.0034123225263985848e-8}, Case{1e-6, 0.1, 256, 3260463.2292971607834},
                        Case{1e-5, 0.1, 256.1, 3263607.0397884213428}, Case{1e-6, 1, 27, 8.7695113048484978803e-10},
                        Case{1e-4, 1, 1.5, 6.4426869538366497255e-9}, Case{1e-3, 1, 2, 1.7182803522145153698e-6},
                        Case{0.01, 10, 20, 0.00019129699912842962637}, Case{0.1, 100, 20.5, 0.0001999181845806829614},
                        Case{0.99, 0.1, 256, 3263997.4271140211413}, Case{0.999, 100, 256.1, 3.2601080379731126889}}) {
    expect_rel(sampled_gaussian_log_a(c.q, c.sigma, c.order), c.log_a, 1e-6);
  }
}

TEST(Rdp, ClosedFormsAtQZeroAndOne) {
  // TF Privacy: compute_rdp(q=0, sigma=10, steps=1, order=20) = 0 and
  // compute_rdp(q=1, ...) = alpha / (2 sigma^2) = 0.1.
  EXPECT_EQ(sampled_gaussian_rdp(0, 10, 20), 0);
  EXPECT_DOUBLE_EQ(sampled_gaussian_rdp(1, 10, 20), 0.1);
  for (double a : {1.5, 2.0, 7.3, 63.0}) EXPECT_DOUBLE_EQ(sampled_gaussian_rdp(1, 1.7, a), a / (2 * 1.7 * 1.7));
  EXPECT_TRUE(std::isinf(sampled_gaussian_rdp(0.5, 0, 2)));
  // As q -> 1 the series and the binomial sum approach the closed form.
  expect_rel(sampled_gaussian_rdp(1 - 1e-9, 2.0, 8), 8 / 8.0, 1e-6);
  expect_rel(sampled_gaussian_rdp(1 - 1e-9, 2.0, 8.5), 8.5 / 8.0, 1e-6);
}

TEST(Rdp, ConversionPublishedValues) {
  // TF Privacy test_get_privacy_spent_check_target_delta and dp_accounting
  // test_compute_epsilon_delta_pure_dp: orders 2..32, rdp 1.1 everywhere, delta
  // 1e-5 -> eps 1.32783806176 at order 32.
  std::vector<double> orders;
  for (int a = 2; a <= 32; ++a) orders.push_back(a);
  RdpEpsilon e = rdp_to_epsilon(orders, std::vector<double>(orders.size(), 1.1), 1e-5);
  expect_rel(e.epsilon, 1.32783806176, 1e-10);
  EXPECT_EQ(e.order, 32);
  // ... and the Gaussian mechanism (q = 1) at sigma 4.530877117 on the orders
  // 1.000, 1.001, ..., 99.999 is exactly (1, 1e-6)-DP (7 places).
  std::vector<double> fine;
  for (int i = 1001; i < 100000; ++i) fine.push_back(0.001 * i);
  RdpEpsilon g = rdp_epsilon({{4.530877117, 1.0, 1}}, 1e-6, fine);
  EXPECT_NEAR(g.epsilon, 1.0, 5e-8);
}

TEST(Rdp, ConversionsOrderedAndOldOneMatchesItsFormula) {
  const std::vector<double> orders = {2, 4, 8, 16};
  const std::vector<double> rdp = {0.5, 0.9, 1.6, 3.1};
  RdpEpsilon old = rdp_to_epsilon(orders, rdp, 1e-5, RdpConversion::Mironov2017);
  double expected = INFINITY;
  for (size_t k = 0; k < orders.size(); ++k) expected = std::min(expected, rdp[k] - std::log(1e-5) / (orders[k] - 1));
  EXPECT_DOUBLE_EQ(old.epsilon, expected);
  EXPECT_LT(rdp_to_epsilon(orders, rdp, 1e-5).epsilon, old.epsilon);
}

TEST(Rdp, MonotoneInStepsRateAndNoise) {
  const double delta = 1e-5;
  auto eps = [&](double sigma, double q, int64_t steps) { return rdp_epsilon({{sigma, q, steps}}, delta).epsilon; };
  double prev = 0;
  for (int64_t steps : {1, 10, 100, 1000, 10000}) {
    const double e = eps(1.0, 0.01, steps);
    EXPECT_GT(e, prev) << steps;
    prev = e;
  }
  prev = 0;
  for (double q : {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0}) {
    const double e = eps(1.0, q, 100);
    EXPECT_GT(e, prev) << q;
    prev = e;
  }
  prev = INFINITY;
  for (double sigma : {0.5, 0.7, 1.0, 1.5, 2.0, 4.0, 8.0}) {
    const double e = eps(sigma, 0.01, 1000);
    EXPECT_LT(e, prev) << sigma;
    prev = e;
  }
}

TEST(Rdp, CompositionAddsOverSegments) {
  const std::vector<double>& o = default_rdp_orders();
  const std::vector<double> whole = compose_rdp({{1.1, 0.01, 1000}}, o);
  const std::vector<double> split = compose_rdp({{1.1, 0.01, 400}, {1.1, 0.01, 600}}, o);
  const std::vector<double> a = compose_rdp({{1.1, 0.01, 300}}, o);
  const std::vector<double> b = compose_rdp({{2.0, 0.05, 200}}, o);
  const std::vector<double> ab = compose_rdp({{1.1, 0.01, 300}, {2.0, 0.05, 200}}, o);
  for (size_t k = 0; k < o.size(); ++k) {
    EXPECT_NEAR(split[k], whole[k], 1e-12 * whole[k]);
    EXPECT_NEAR(ab[k], a[k] + b[k], 1e-12 * ab[k]);
  }
  EXPECT_NEAR(rdp_epsilon({{1.1, 0.01, 400}, {1.1, 0.01, 600}}, 1e-5).epsilon,
              rdp_epsilon({{1.1, 0.01, 1000}}, 1e-5).epsilon, 1e-12);
  EXPECT_EQ(rdp_epsilon({}, 1e-5).epsilon, 0);
}

TEST(Rdp, RejectsBadArguments) {
  EXPECT_THROW(sampled_gaussian_rdp(1.5, 1, 2), Error);
  EXPECT_THROW(sampled_gaussian_rdp(-0.1, 1, 2), Error);
  EXPECT_THROW(sampled_gaussian_rdp(0.1, -1, 2), Error);
  EXPECT_THROW(sampled_gaussian_rdp(0.1, 1, 1.0), Error);
  EXPECT_THROW(rdp_to_epsilon({2, 3}, {0.1}, 1e-5), Error);
  EXPECT_THROW(rdp_to_epsilon({2}, {0.1}, 0), Error);
  EXPECT_THROW(rdp_to_epsilon({2}, {0.1}, 1), Error);
  EXPECT_THROW(rdp_to_epsilon({0.5}, {0.1}, 1e-5), Error);
  try {
    rdp_to_epsilon({2}, {0.1}, 2.0);
    FAIL() << "expected a throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(std::string(e.what()).find("delta"), std::string::npos);
  }
}

}  // namespace
}  // namespace aegis
