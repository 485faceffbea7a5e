#pragma once
/// The PRV accountant (Gopi, Lee, Wutschitz 2021, "Numerical composition of
/// differential privacy"), as Opacus's `prv` accountant and Microsoft's
/// prv_accountant compute it, for the Poisson-subsampled Gaussian mechanism.
///
/// The privacy loss random variable (PRV) of one step is truncated to a domain
/// [-L, L] chosen from an RDP bound (so the mass cut off is below delta_error),
/// discretised on a mesh fine enough for eps_error (Thm. 5.5 of the paper),
/// its mean preserved by a sub-mesh shift, and composed over the steps by FFT.
/// The composed distribution gives delta(eps) directly; the paper's error
/// analysis turns it into a lower bound, an estimate and an upper bound on the
/// true epsilon: upper = eps(delta - delta_error) + eps_error. The upper bound
/// is the guarantee; it is tighter than RDP's for DP-SGD settings.
///
///   PrvEpsilon e = prv_epsilon({{1.1, 256.0 / 60000, 14063}}, 1e-5);
///   // e.lower <= true epsilon <= e.upper; e.upper < rdp_epsilon(...).epsilon

#include <cstdint>
#include <vector>

#include "aegis/privacy/rdp.h"

namespace aegis {

struct PrvOptions {
  double eps_error_ = 0.01;  ///< > 0; the half-width of the epsilon error band (Opacus's default 0.01)
  double delta_error_ = 0;   ///< in [0, delta); 0 = delta / 1000 (Opacus's default)
  /// > 0; the largest grid the FFT may use (peak memory is about 200 bytes per
  /// point: 0.8 GB at the default); a larger need throws Unsupported (raise
  /// eps_error or use RDP).
  int64_t max_grid_points_ = int64_t(1) << 22;

  PrvOptions& eps_error(double v) { eps_error_ = v; return *this; }
  PrvOptions& delta_error(double v) { delta_error_ = v; return *this; }
  PrvOptions& max_grid_points(int64_t v) { max_grid_points_ = v; return *this; }
};

struct PrvEpsilon {
  double lower = 0;     ///< the true epsilon is at least this
  double estimate = 0;  ///< epsilon of the discretised composition at delta itself
  double upper = 0;     ///< the true epsilon is at most this: the guarantee to report
};

/// Epsilon bounds at `delta` (in (0, 1)) for a history of sampled Gaussian
/// segments (each sigma > 0, q in (0, 1], steps >= 1; an empty history gives
/// zeros). Throws InvalidArgument for bad parameters or a delta too small for
/// double precision on the grid, Unsupported when the grid would exceed
/// max_grid_points or epsilon lies beyond what double precision can represent
/// (about 700).
PrvEpsilon prv_epsilon(const std::vector<DpSegment>& history, double delta, const PrvOptions& options = {});

/// The CDF of the privacy loss random variable of one step of the
/// Poisson-subsampled Gaussian mechanism (Gopi et al. Prop. B4): P(L <= t),
/// L = log(mu(x) / mu0(x)) for x ~ mu = (1 - q) N(0, sigma^2) + q N(1, sigma^2),
/// mu0 = N(0, sigma^2). Exposed for tests.
double subsampled_gaussian_prv_cdf(double sample_rate, double noise_multiplier, double t);

}  // namespace aegis
