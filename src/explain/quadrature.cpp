#include "aegis/explain/quadrature.h"

#include <cmath>
#include <numeric>

#include "aegis/core/error.h"

namespace aegis {

namespace {

/// Nodes and weights of n-point Gauss-Legendre on [-1, 1] by Newton's method
/// on P_n from the Chebyshev guess (Numerical Recipes' gauleg), in double.
void gauss_legendre(int64_t n, std::vector<double>& x, std::vector<double>& w) {
  x.assign(size_t(n), 0.0);
  w.assign(size_t(n), 0.0);
  const int64_t m = (n + 1) / 2;
  for (int64_t i = 0; i < m; ++i) {
    double z = std::cos(M_PI * (double(i) + 0.75) / (double(n) + 0.5));
    double pp = 0;
    for (int iter = 0; iter < 100; ++iter) {
      double p1 = 1.0, p2 = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        const double p3 = p2;
        p2 = p1;
        p1 = ((2.0 * double(j) + 1.0) * z * p2 - double(j) * p3) / double(j + 1);
      }
      pp = double(n) * (z * p1 - p2) / (z * z - 1.0);
      const double z1 = z;
      z = z1 - p1 / pp;
      if (std::abs(z - z1) < 1e-15) break;
    }
    x[size_t(i)] = -z;
    x[size_t(n - 1 - i)] = z;
    w[size_t(i)] = w[size_t(n - 1 - i)] = 2.0 / ((1.0 - z * z) * pp * pp);
  }
}

}  // namespace

std::string integration_rule_name(IntegrationRule rule) {
  switch (rule) {
    case IntegrationRule::GaussLegendre:
      return "gauss-legendre";
    case IntegrationRule::RiemannLeft:
      return "riemann-left";
    case IntegrationRule::RiemannRight:
      return "riemann-right";
    case IntegrationRule::RiemannMiddle:
      return "riemann-middle";
    case IntegrationRule::Trapezoid:
      return "trapezoid";
  }
  return "?";
}

IntegrationRule parse_integration_rule(const std::string& name) {
  for (IntegrationRule r : {IntegrationRule::GaussLegendre, IntegrationRule::RiemannLeft, IntegrationRule::RiemannRight,
                            IntegrationRule::RiemannMiddle, IntegrationRule::Trapezoid})
    if (integration_rule_name(r) == name) return r;
  AEGIS_FAIL(InvalidArgument, "unknown integration rule '"
                                  << name
                                  << "' (gauss-legendre, riemann-left, riemann-right, riemann-middle, trapezoid)");
  return IntegrationRule::GaussLegendre;  // not reached
}

Quadrature quadrature(IntegrationRule rule, int64_t n) {
  AEGIS_CHECK(n >= 1, InvalidArgument, "the integration needs at least 1 step, got " << n);
  AEGIS_CHECK(rule != IntegrationRule::Trapezoid || n >= 2, InvalidArgument,
              "the trapezoid rule needs at least 2 steps, got " << n);
  Quadrature q;
  const double dn = double(n);
  switch (rule) {
    case IntegrationRule::GaussLegendre: {
      std::vector<double> x, w;
      gauss_legendre(n, x, w);
      for (int64_t k = 0; k < n; ++k) {
        q.alphas.push_back(0.5 * (x[size_t(k)] + 1.0));
        q.weights.push_back(0.5 * w[size_t(k)]);
      }
      break;
    }
    case IntegrationRule::RiemannLeft:
    case IntegrationRule::RiemannRight:
    case IntegrationRule::RiemannMiddle: {
      const double shift = rule == IntegrationRule::RiemannLeft    ? 0.0
                           : rule == IntegrationRule::RiemannRight ? 1.0
                                                                   : 0.5;
      for (int64_t k = 0; k < n; ++k) {
        q.alphas.push_back((double(k) + shift) / dn);
        q.weights.push_back(1.0 / dn);
      }
      break;
    }
    case IntegrationRule::Trapezoid:
      for (int64_t k = 0; k < n; ++k) {
        q.alphas.push_back(double(k) / (dn - 1.0));
        q.weights.push_back((k == 0 || k == n - 1 ? 0.5 : 1.0) / (dn - 1.0));
      }
      break;
  }
  // Make the weights sum to 1 exactly: the last weight is 1 minus the sum of
  // the others, which is exact (Sterbenz: that sum lies in [0.5, 1]), and so
  // is adding it back.
  if (n >= 2) q.weights.back() = 1.0 - std::accumulate(q.weights.begin(), q.weights.end() - 1, 0.0);
  return q;
}

}  // namespace aegis
