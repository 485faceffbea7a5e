#include "aegis/defenses/certification/binomial.h"

#include <algorithm>
#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

double binomial_cdf(int64_t k, int64_t n, double p) {
  if (k < 0) return 0.0;
  if (k >= n) return 1.0;
  if (p <= 0) return 1.0;
  if (p >= 1) return 0.0;
  // Sum the pmf in log space, largest term first for accuracy.
  const double lp = std::log(p), lq = std::log1p(-p), lgn = std::lgamma(double(n) + 1);
  auto log_pmf = [&](int64_t i) {
    return lgn - std::lgamma(double(i) + 1) - std::lgamma(double(n - i) + 1) + double(i) * lp + double(n - i) * lq;
  };
  double m = -INFINITY;
  for (int64_t i = 0; i <= k; ++i) m = std::max(m, log_pmf(i));
  double s = 0;
  for (int64_t i = 0; i <= k; ++i) s += std::exp(log_pmf(i) - m);
  return std::min(1.0, std::exp(m) * s);
}

namespace {
void check_counts(int64_t k, int64_t n, double alpha) {
  AEGIS_CHECK(n >= 1, InvalidArgument, "need at least one trial, got n = " << n);
  AEGIS_CHECK(k >= 0 && k <= n, InvalidArgument, "successes must be in [0, n], got " << k << " of " << n);
  AEGIS_CHECK(alpha > 0 && alpha < 1, InvalidArgument, "alpha must be in (0, 1), got " << alpha);
}
}  // namespace

double clopper_pearson_lower(int64_t k, int64_t n, double alpha) {
  check_counts(k, n, alpha);
  if (k == 0) return 0.0;
  // Lower bound pL solves P(X >= k | pL) = alpha; P(X >= k | p) = 1 - cdf(k-1)
  // grows with p.
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    double mid = 0.5 * (lo + hi);
    (1.0 - binomial_cdf(k - 1, n, mid) < alpha ? lo : hi) = mid;
  }
  return lo;
}

double clopper_pearson_upper(int64_t k, int64_t n, double alpha) {
  check_counts(k, n, alpha);
  if (k == n) return 1.0;
  // Upper bound pU solves P(X <= k | pU) = alpha; cdf(k) falls with p.
  double lo = 0, hi = 1;
  for (int i = 0; i < 200 && hi - lo > 1e-15; ++i) {
    double mid = 0.5 * (lo + hi);
    (binomial_cdf(k, n, mid) > alpha ? lo : hi) = mid;
  }
  return hi;
}

double normal_quantile(double q) {
  AEGIS_CHECK(q > 0 && q < 1, InvalidArgument, "normal quantile needs q in (0, 1), got " << q);
  double lo = -40, hi = 40;
  for (int i = 0; i < 200 && hi - lo > 1e-14; ++i) {
    double mid = 0.5 * (lo + hi);
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < q ? lo : hi) = mid;
  }
  return 0.5 * (lo + hi);
}

double binomial_test_half(int64_t k, int64_t n) {
  AEGIS_CHECK(n >= 1 && k >= 0 && k <= n, InvalidArgument, "binomial test needs 0 <= k <= n, n >= 1");
  int64_t tail = std::min(k, n - k);
  return std::min(1.0, 2.0 * binomial_cdf(tail, n, 0.5));
}

}  // namespace aegis
