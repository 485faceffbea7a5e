#pragma once
/// Quadrature rules on [0, 1] for path integrals (Integrated Gradients):
/// points alpha_k and weights w_k with sum_k w_k f(alpha_k) ~ integral of f.
/// Weights sum to 1 exactly (to the last bit of a double sum), so a constant
/// gradient is integrated exactly by every rule.
///
///   Quadrature q = quadrature(IntegrationRule::GaussLegendre, 16);  // exact for degree <= 31

#include <cstdint>
#include <string>
#include <vector>

namespace aegis {

enum class IntegrationRule {
  GaussLegendre,  ///< n Gauss-Legendre nodes: exact for polynomials of degree <= 2n-1 (the default)
  RiemannLeft,    ///< alpha = k/n, k = 0..n-1
  RiemannRight,   ///< alpha = k/n, k = 1..n
  RiemannMiddle,  ///< alpha = (k + 1/2)/n: exact for degree <= 1
  Trapezoid,      ///< n points from 0 to 1 inclusive (n >= 2), half weights at the ends
};

/// "gauss-legendre", "riemann-left", "riemann-right", "riemann-middle", "trapezoid".
std::string integration_rule_name(IntegrationRule rule);
/// The inverse of integration_rule_name; InvalidArgument for anything else.
IntegrationRule parse_integration_rule(const std::string& name);

struct Quadrature {
  std::vector<double> alphas;
  std::vector<double> weights;
};

/// The rule's n points and weights on [0, 1]. InvalidArgument for n < 1 (n < 2 for the trapezoid).
Quadrature quadrature(IntegrationRule rule, int64_t n);

}  // namespace aegis
