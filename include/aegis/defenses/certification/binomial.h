#pragma once
/// The statistics randomized smoothing certifies with: the binomial CDF, the
/// one-sided Clopper-Pearson confidence bounds (the Beta quantiles, found by
/// bisection on the binomial CDF, which is monotone in p) and the standard
/// normal quantile.
///
///   double pA = clopper_pearson_lower(990, 1000, 0.001);   // P(p >= pA) >= 0.999
///   double r = sigma * normal_quantile(pA);

#include <cstdint>

namespace aegis {

/// P(X <= k) for X ~ Binomial(n, p); exact (log-space terms), n >= 0.
double binomial_cdf(int64_t k, int64_t n, double p);
/// One-sided (1 - alpha) lower bound on p after k successes in n trials: the
/// alpha quantile of Beta(k, n - k + 1); 0 when k = 0. Throws InvalidArgument
/// unless 0 <= k <= n, n >= 1 and alpha in (0, 1).
double clopper_pearson_lower(int64_t k, int64_t n, double alpha);
/// One-sided (1 - alpha) upper bound: the 1 - alpha quantile of Beta(k + 1, n -
/// k); 1 when k = n.
double clopper_pearson_upper(int64_t k, int64_t n, double alpha);
/// Phi^-1(q) of the standard normal for q in (0, 1) (to ~1e-12, by bisection on
/// erfc).
double normal_quantile(double q);
/// Two-sided binomial test p-value of k successes in n trials against p = 0.5.
double binomial_test_half(int64_t k, int64_t n);

}  // namespace aegis
