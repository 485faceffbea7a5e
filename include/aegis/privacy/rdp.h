#pragma once
/// Renyi differential privacy (Mironov 2017) of the sampled Gaussian mechanism
/// (Mironov, Talwar, Zhang 2019): each step includes every example with
/// probability q (Poisson sampling), clips, sums and adds N(0, sigma^2 C^2)
/// noise. Computed as Opacus and TensorFlow Privacy compute it, in double
/// precision and log space: integer orders by the binomial expansion, fractional
/// orders by the two-sided series of Mironov et al. Sec. 3.3, q = 1 by the
/// closed form alpha / (2 sigma^2), q = 0 as zero. RDP adds over steps and over
/// segments; the (epsilon, delta) conversion is Balle et al. 2020, Thm. 21
/// (what Opacus and TF Privacy use today).
///
///   std::vector<double> rdp = compose_rdp({{1.1, 256.0 / 60000, 14063}}, default_rdp_orders());
///   RdpEpsilon e = rdp_to_epsilon(default_rdp_orders(), rdp, 1e-5);   // e.epsilon, e.order

#include <cstdint>
#include <vector>

namespace aegis {

/// `steps` steps of the sampled Gaussian mechanism at one noise multiplier
/// (noise std / clipping norm) and one Poisson sampling rate: one entry of an
/// accountant's history.
struct DpSegment {
  double noise_multiplier = 0;  ///< sigma, > 0
  double sample_rate = 0;       ///< q, in (0, 1]
  int64_t steps = 0;            ///< >= 1

  bool operator==(const DpSegment&) const = default;
};

/// The orders Opacus's RDPAccountant uses (DEFAULT_ALPHAS):
/// 1.1, 1.2, ..., 10.9 (99 orders) then 12, 13, ..., 63 (52 orders).
const std::vector<double>& default_rdp_orders();

/// RDP at `order` (> 1; +inf gives +inf) of one step of the sampled Gaussian
/// mechanism with sampling rate q in [0, 1] and noise multiplier sigma >= 0
/// (0 gives +inf unless q = 0). Throws InvalidArgument outside those ranges.
double sampled_gaussian_rdp(double sample_rate, double noise_multiplier, double order);

/// log A_alpha of Mironov et al. 2019 (RDP = log A / (alpha - 1)) for 0 < q < 1,
/// sigma > 0, order > 1: the binomial sum for integer orders, the series for
/// fractional ones. +inf where the series does not converge (that order is then
/// useless, never optimistic).
double sampled_gaussian_log_a(double sample_rate, double noise_multiplier, double order);

/// Total RDP of a history at each order: the sum over segments of
/// steps * sampled_gaussian_rdp(q, sigma, order).
std::vector<double> compose_rdp(const std::vector<DpSegment>& history, const std::vector<double>& orders);

/// How RDP turns into (epsilon, delta).
enum class RdpConversion {
  /// eps = rdp - (log delta + log alpha) / (alpha - 1) + log((alpha - 1) / alpha):
  /// Balle et al. 2020 Thm. 21, Opacus's get_privacy_spent and TF Privacy's
  /// compute_epsilon. The default.
  Balle2020,
  /// eps = rdp - log(delta) / (alpha - 1): Mironov 2017 Prop. 3, the original
  /// moments-accountant conversion behind older published numbers (Abadi et
  /// al. 2016, the TF Privacy tutorials before 2020). Always looser.
  Mironov2017,
};

struct RdpEpsilon {
  double epsilon = 0;  ///< the smallest epsilon over the orders (>= 0; +inf if every order is +inf)
  double order = 0;    ///< the order that gives it (NaN when epsilon is +inf)
};

/// (epsilon, delta) from RDP values at the given orders: the minimum over
/// orders of the conversion. Throws InvalidArgument unless delta is in (0, 1),
/// the lists have the same non-zero length and every order is > 1.
RdpEpsilon rdp_to_epsilon(const std::vector<double>& orders, const std::vector<double>& rdp, double delta,
                          RdpConversion conversion = RdpConversion::Balle2020);

/// compose_rdp then rdp_to_epsilon, with Opacus's orders unless given.
RdpEpsilon rdp_epsilon(const std::vector<DpSegment>& history, double delta,
                       const std::vector<double>& orders = default_rdp_orders(),
                       RdpConversion conversion = RdpConversion::Balle2020);

}  // namespace aegis
