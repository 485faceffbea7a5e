#include "aegis/privacy/rdp.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "aegis/core/error.h"

namespace aegis {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// Integer orders are summed term by term (order + 1 terms); past this the
// caller almost certainly passed a wrong number.
constexpr double kMaxOrder = 1e6;
// The fractional series stops once both new terms are below e^-30 (as Opacus
// and TF Privacy); a series that has not converged after this many terms makes
// the order unusable (+inf), never optimistic.
constexpr int kMaxSeriesTerms = 100000;

/// log(e^a + e^b).
double log_add(double a, double b) {
  if (a < b) std::swap(a, b);
  if (b == -kInf) return a;
  return a + std::log1p(std::exp(b - a));
}

/// log(e^a - e^b) for a >= b; -inf when equal.
double log_sub(double a, double b) {
  if (b == -kInf) return a;
  if (a <= b) return -kInf;
  return a + std::log1p(-std::exp(b - a));
}

/// log(erfc(x)), accurate where erfc underflows: the asymptotic series
/// erfc(x) = e^{-x^2} / (x sqrt(pi)) * sum_k (-1)^k (2k-1)!! / (2x^2)^k,
/// whose terms at x >= 25 fall below 1e-17 by k = 7.
double log_erfc(double x) {
  if (x < 25) return std::log(std::erfc(x));
  const double inv = 1.0 / (2 * x * x);
  double term = 1, sum = 1;
  for (int k = 1; k <= 8; ++k) {
    term *= -(2.0 * k - 1) * inv;
    sum += term;
  }
  return -x * x - std::log(x) - 0.5 * std::log(M_PI) + std::log(sum);
}

/// log C(n, k) for integer n >= k >= 0.
double log_binomial(double n, double k) { return std::lgamma(n + 1) - std::lgamma(k + 1) - std::lgamma(n - k + 1); }

double log_a_integer(double q, double sigma, int64_t alpha) {
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  double log_a = -kInf;
  for (int64_t i = 0; i <= alpha; ++i) {
    const double di = double(i);
    const double log_coef = log_binomial(double(alpha), di) + di * log_q + double(alpha - i) * log_1mq;
    log_a = log_add(log_a, log_coef + (di * di - di) / (2 * sigma * sigma));
  }
  return log_a;
}

// Mironov, Talwar, Zhang 2019 Sec. 3.3: A_alpha split at z0 into two integrals,
// each a series over i of C(alpha, i) (signed for fractional alpha) times
// Gaussian tail masses. Positive and negative terms are summed apart in log
// space and subtracted once at the end.
double log_a_fractional(double q, double sigma, double alpha) {
  const double log_q = std::log(q), log_1mq = std::log1p(-q);
  const double z0 = sigma * sigma * std::log(1 / q - 1) + 0.5;
  const double s2 = std::sqrt(2.0) * sigma, two_var = 2 * sigma * sigma;
  double pos0 = -kInf, neg0 = -kInf, pos1 = -kInf, neg1 = -kInf;
  double log_coef = 0;   // log |C(alpha, i)|
  bool positive = true;  // sign of C(alpha, i)
  for (int i = 0; i < kMaxSeriesTerms; ++i) {
    const double di = double(i), j = alpha - di;
    const double log_t0 = log_coef + di * log_q + j * log_1mq;
    const double log_t1 = log_coef + j * log_q + di * log_1mq;
    const double log_e0 = std::log(0.5) + log_erfc((di - z0) / s2);
    const double log_e1 = std::log(0.5) + log_erfc((z0 - j) / s2);
    const double log_s0 = log_t0 + (di * di - di) / two_var + log_e0;
    const double log_s1 = log_t1 + (j * j - j) / two_var + log_e1;
    if (positive) {
      pos0 = log_add(pos0, log_s0);
      pos1 = log_add(pos1, log_s1);
    } else {
      neg0 = log_add(neg0, log_s0);
      neg1 = log_add(neg1, log_s1);
    }
    if (std::max(log_s0, log_s1) < -30) {
      if (neg0 >= pos0 || neg1 >= pos1) return kInf;  // cancellation ate the sum
      return log_add(log_sub(pos0, neg0), log_sub(pos1, neg1));
    }
    // C(alpha, i + 1) = C(alpha, i) * (alpha - i) / (i + 1).
    const double factor = alpha - di;
    if (factor == 0) return log_add(log_sub(pos0, neg0), log_sub(pos1, neg1));  // integer alpha: finite sum
    log_coef += std::log(std::fabs(factor)) - std::log(di + 1);
    if (factor < 0) positive = !positive;
  }
  return kInf;
}

void check_rate_and_noise(double q, double sigma) {
  AEGIS_CHECK(q >= 0 && q <= 1, InvalidArgument, "sample rate must be in [0, 1], got " << q);
  AEGIS_CHECK(sigma >= 0 && std::isfinite(sigma), InvalidArgument,
              "noise multiplier must be finite and >= 0, got " << sigma);
}

}  // namespace

const std::vector<double>& default_rdp_orders() {
  static const std::vector<double> orders = [] {
    std::vector<double> v;
    for (int x = 1; x < 100; ++x) v.push_back(1 + x / 10.0);
    for (int a = 12; a < 64; ++a) v.push_back(a);
    return v;
  }();
  return orders;
}

double sampled_gaussian_log_a(double q, double sigma, double order) {
  AEGIS_CHECK(q > 0 && q < 1, InvalidArgument, "log A needs a sample rate in (0, 1), got " << q);
  AEGIS_CHECK(sigma > 0 && std::isfinite(sigma), InvalidArgument, "noise multiplier must be > 0, got " << sigma);
  AEGIS_CHECK(order > 1 && order <= kMaxOrder, InvalidArgument,
              "RDP order must be in (1, " << kMaxOrder << "], got " << order);
  if (order == std::floor(order)) return log_a_integer(q, sigma, int64_t(order));
  return log_a_fractional(q, sigma, order);
}

double sampled_gaussian_rdp(double q, double sigma, double order) {
  check_rate_and_noise(q, sigma);
  AEGIS_CHECK(order > 1, InvalidArgument, "RDP order must be > 1, got " << order);
  if (q == 0) return 0;
  if (sigma == 0) return kInf;
  if (q == 1) return order / (2 * sigma * sigma);
  if (std::isinf(order)) return kInf;
  return sampled_gaussian_log_a(q, sigma, order) / (order - 1);
}

std::vector<double> compose_rdp(const std::vector<DpSegment>& history, const std::vector<double>& orders) {
  std::vector<double> rdp(orders.size(), 0.0);
  for (const DpSegment& s : history) {
    AEGIS_CHECK(s.steps >= 0, InvalidArgument, "step count must be >= 0, got " << s.steps);
    if (s.steps == 0) continue;
    for (size_t k = 0; k < orders.size(); ++k) {
      rdp[k] += double(s.steps) * sampled_gaussian_rdp(s.sample_rate, s.noise_multiplier, orders[k]);
    }
  }
  return rdp;
}

RdpEpsilon rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
                          RdpConversion conversion) {
  AEGIS_CHECK(delta > 0 && delta < 1, InvalidArgument, "delta must be in (0, 1), got " << delta);
  AEGIS_CHECK(!orders.empty() && orders.size() == rdp.size(), InvalidArgument,
              "need one RDP value per order, got " << rdp.size() << " values for " << orders.size() << " orders");
  RdpEpsilon best{kInf, std::numeric_limits<double>::quiet_NaN()};
  const double log_delta = std::log(delta);
  for (size_t k = 0; k < orders.size(); ++k) {
    const double a = orders[k];
    AEGIS_CHECK(a > 1, InvalidArgument, "RDP orders must be > 1, got " << a);
    if (std::isnan(rdp[k]) || rdp[k] == kInf) continue;
    double eps;
    if (delta * delta + std::expm1(-rdp[k]) > 0) {
      // delta >= sqrt(1 - e^{-rdp}) >= sqrt(1 - e^{-KL}) >= total variation
      // (Bretagnolle-Huber; D_alpha >= KL for alpha > 1): (0, delta)-DP, as
      // TF Privacy's compute_epsilon. Covers the empty history exactly.
      eps = 0;
    } else if (conversion == RdpConversion::Balle2020) {
      eps = rdp[k] - (log_delta + std::log(a)) / (a - 1) + std::log((a - 1) / a);
    } else {
      eps = rdp[k] - log_delta / (a - 1);
    }
    if (eps < best.epsilon) best = {eps, a};  // first minimum wins, as numpy's argmin
  }
  if (best.epsilon < 0) best.epsilon = 0;  // (eps', delta) with eps' < 0 implies (0, delta)
  return best;
}

RdpEpsilon rdp_epsilon(const std::vector<DpSegment>& history, double delta, const std::vector<double>& orders,
                       RdpConversion conversion) {
  return rdp_to_epsilon(orders, compose_rdp(history, orders), delta, conversion);
}

}  // namespace aegis
