#include "aegis/privacy/prv.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "aegis/core/error.h"
#include "privacy/internal/fft.h"

namespace aegis {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kSqrt2 = 1.4142135623730951;

/// The PRV of one Poisson-subsampled Gaussian step with both tails computed
/// without cancellation: cdf(t) for the lower half, sf(t) = 1 - cdf(t) for the
/// upper half, each a sum of positive erfc terms.
struct SubsampledGaussian {
  double q, sigma;

  /// log((e^t + q - 1) / q), the Gaussian abscissa z for loss t; -inf at and
  /// below log(1 - q), where the loss cannot go.
  double z(double t) const {
    if (t > 0) return t + std::log1p(-(1 - q) * std::exp(-t)) - std::log(q);
    const double inner = q + std::expm1(t);
    return inner > 0 ? std::log(inner) - std::log(q) : -kInf;
  }
  double a(double zz) const { return (2 * zz * sigma * sigma - 1) / (2 * kSqrt2 * sigma); }
  double b(double zz) const { return (2 * zz * sigma * sigma + 1) / (2 * kSqrt2 * sigma); }

  double cdf(double t) const {
    const double zz = z(t);
    if (zz == -kInf) return 0.0;
    return 0.5 * (q * std::erfc(-a(zz)) + (1 - q) * std::erfc(-b(zz)));
  }
  double sf(double t) const {
    const double zz = z(t);
    if (zz == -kInf) return 1.0;
    return 0.5 * (q * std::erfc(a(zz)) + (1 - q) * std::erfc(b(zz)));
  }
};

/// The PRV restricted to [t_min, t_max] and renormalised.
struct Truncated {
  SubsampledGaussian prv;
  double t_min, t_max;
  double cdf_lo, sf_hi, mass;

  Truncated(SubsampledGaussian p, double lo, double hi) : prv(p), t_min(lo), t_max(hi) {
    cdf_lo = prv.cdf(t_min);
    sf_hi = prv.sf(t_max);
    mass = 1 - (cdf_lo + sf_hi);
  }
  /// P(T <= t): 0 below t_min, 1 from t_max on; precise where t < 0.
  double cdf(double t) const { return t <= t_min ? 0.0 : t >= t_max ? 1.0 : (prv.cdf(t) - cdf_lo) / mass; }
  /// P(T > t) = 1 - cdf(t), computed directly; precise where t > 0.
  double sf(double t) const { return t >= t_max ? 0.0 : t <= t_min ? 1.0 : (prv.sf(t) - sf_hi) / mass; }
  /// P(lo < T <= hi), from whichever tail keeps relative precision.
  double mass_between(double lo, double hi) const { return hi <= 0 ? cdf(hi) - cdf(lo) : sf(lo) - sf(hi); }
};

/// Adaptive Gauss-Kronrod (7/15) integration of a smooth function.
template <class F>
double integrate(const F& f, double lo, double hi, int depth = 0) {
  static constexpr double xk[8] = {0.991455371120812639, 0.949107912342758525, 0.864864423359769073,
                                   0.741531185599394440, 0.586087235467691130, 0.405845151377397167,
                                   0.207784955007898468, 0.000000000000000000};
  static constexpr double wk[8] = {0.022935322010529225, 0.063092092629978553, 0.104790010322250184,
                                   0.140653259715525919, 0.169004726639267903, 0.190350578064785410,
                                   0.204432940075298892, 0.209482141084727828};
  static constexpr double wg[4] = {0.129484966168869693, 0.279705391489276668, 0.381830050505118945,
                                   0.417959183673469388};
  const double c = 0.5 * (lo + hi), h = 0.5 * (hi - lo);
  const double fc = f(c);
  double kronrod = wk[7] * fc, gauss = wg[3] * fc;
  for (int i = 0; i < 7; ++i) {
    const double v = f(c - h * xk[i]) + f(c + h * xk[i]);
    kronrod += wk[i] * v;
    if (i % 2 == 1) gauss += wg[i / 2] * v;
  }
  kronrod *= h;
  gauss *= h;
  // Relative 5e-14 is a few rounding errors of the 15-term sum; 1e-20 absolute
  // ends the far tails, where the integrand underflows.
  if (std::fabs(kronrod - gauss) <= std::max(1e-20, 5e-14 * std::fabs(kronrod)) || depth >= 30) return kronrod;
  return integrate(f, lo, c, depth + 1) + integrate(f, c, hi, depth + 1);
}

/// E[T] = int_0^t_max P(T > t) dt - int_{t_min}^0 P(T <= t) dt, integrated over
/// pieces that resolve the scales near 0 (where a small q puts the mass) and
/// the kink at log(1 - q).
double truncated_mean(const Truncated& tp) {
  std::vector<double> cuts = {0.0};
  for (double s = 1e-5; s <= 0.11; s *= 10) cuts.insert(cuts.end(), {s, -s});
  if (tp.prv.q < 1) cuts.push_back(std::log1p(-tp.prv.q));
  cuts.push_back(tp.t_min);
  cuts.push_back(tp.t_max);
  std::sort(cuts.begin(), cuts.end());
  double upper = 0, lower = 0;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    const double lo = std::max(cuts[i], tp.t_min), hi = std::min(cuts[i + 1], tp.t_max);
    if (hi <= lo) continue;
    if (lo >= 0) {
      upper += integrate([&](double t) { return tp.sf(t); }, lo, hi);
    } else {
      lower += integrate([&](double t) { return tp.cdf(t); }, lo, hi);
    }
  }
  return upper - lower;
}

/// An evenly spaced grid t_min + i * dt, i < size, with the offset the mean
/// correction and composition add to it.
struct Grid {
  double t_min = 0, t_max = 0;
  int64_t size = 0;
  double shift = 0;
  double dt() const { return (t_max - t_min) / double(size - 1); }
  double t(int64_t i) const { return t_min + shift + double(i) * dt(); }
};

/// Opacus's Domain.create_aligned: ends on multiples of dt, an even size.
Grid aligned_grid(double lo, double hi, double dt) {
  Grid g;
  g.t_min = std::floor(lo / dt) * dt;
  g.t_max = std::ceil(hi / dt) * dt;
  g.size = int64_t(std::llround((g.t_max - g.t_min) / dt)) + 1;
  if (g.size % 2 == 1) {
    g.size += 1;
    g.t_max += dt;
  }
  return g;
}

/// Half-width L of the domain (Gopi et al. Remark 5.6, as Opacus): the RDP
/// epsilon of the whole history at delta_error / 4 and of any one step at
/// delta_error / (8 n), plus 3.
double safe_domain_half_width(const std::vector<DpSegment>& history, double eps_error, double delta_error) {
  int64_t total = 0;
  for (const DpSegment& s : history) total += s.steps;
  double l = rdp_epsilon(history, delta_error / 4).epsilon;
  for (const DpSegment& s : history) {
    l = std::max(l, rdp_epsilon({{s.noise_multiplier, s.sample_rate, 1}}, delta_error / (8 * double(total))).epsilon);
  }
  return std::max(l, eps_error) + 3;
}

struct Discrete {
  std::vector<double> pmf;
  Grid grid;
};

/// Cell-centred discretisation with the mean preserved: the mass of each cell
/// sits at its centre, then the grid shifts by the difference between the
/// continuous and the discrete means (less than half a cell).
Discrete discretise(const DpSegment& s, const Grid& base) {
  const Truncated tp(SubsampledGaussian{s.sample_rate, s.noise_multiplier}, base.t_min, base.t_max);
  AEGIS_CHECK(tp.mass > 0.5, Internal, "PRV domain holds only " << tp.mass << " of the mass");
  Discrete d{std::vector<double>(size_t(base.size)), base};
  const double dt = base.dt();
  long double mean_d = 0;
  for (int64_t i = 0; i < base.size; ++i) {
    const double tc = base.t(i);
    d.pmf[size_t(i)] = tp.mass_between(tc - dt / 2, tc + dt / 2);
    mean_d += (long double)tc * d.pmf[size_t(i)];
  }
  const double shift = truncated_mean(tp) - double(mean_d);
  AEGIS_CHECK(std::fabs(shift) < dt / 2, Internal,
              "discrete PRV mean is " << shift << " from the continuous one (mesh " << dt << ")");
  d.grid.shift = shift;
  return d;
}

/// The n-fold self-composition: circular convolution by FFT, then rolled so
/// index i is again t_min + i dt (plus n times the mean shift).
Discrete compose_self(const Discrete& d, int64_t n) {
  Discrete out{internal::circular_self_convolution(d.pmf, n), d.grid};
  const int64_t size = d.grid.size;
  const int64_t roll = ((n - 1) + (n % 2 == 0 ? size / 2 : 0)) % size;
  std::rotate(out.pmf.begin(), out.pmf.end() - roll, out.pmf.end());
  out.grid.shift = d.grid.shift * double(n);
  return out;
}

/// Two independent PRVs on the same grid: the central part of their linear
/// convolution, shifts added.
Discrete compose_two(const Discrete& a, const Discrete& b) {
  Discrete out{internal::convolve_same(a.pmf, b.pmf), a.grid};
  out.grid.shift = a.grid.shift + b.grid.shift;
  return out;
}

/// delta(eps) = sum_{t_i >= eps} p_i (1 - e^{eps - t_i}) of the discrete PRV,
/// inverted: the epsilon at which it equals `delta`.
class EpsilonSolver {
 public:
  explicit EpsilonSolver(const Discrete& d) : n_(d.grid.size), d1_(size_t(n_)), d2_(size_t(n_)), ndelta_(size_t(n_)) {
    long double s1 = 0, s2 = 0;
    for (int64_t i = n_ - 1; i >= 0; --i) {
      const double t = d.grid.t(i);
      s1 += d.pmf[size_t(i)];
      s2 += (long double)(d.pmf[size_t(i)] * std::exp(-t));
      d1_[size_t(i)] = s1;
      d2_[size_t(i)] = s2;
      ndelta_[size_t(i)] = (long double)std::exp(t) * s2 - s1;  // -delta(t_i)
    }
  }
  double epsilon(double delta) const {
    const auto it = std::lower_bound(ndelta_.begin(), ndelta_.end(), (long double)-delta);
    const int64_t i = int64_t(it - ndelta_.begin());
    AEGIS_CHECK(i > 0, Internal, "cannot compute epsilon: delta " << delta << " is reached below the PRV domain");
    AEGIS_CHECK(i < n_, Unsupported, "cannot compute epsilon: delta " << delta << " lies beyond the PRV domain");
    return double(std::log((d1_[size_t(i)] - (long double)delta) / d2_[size_t(i)]));
  }

 private:
  int64_t n_;
  std::vector<long double> d1_, d2_, ndelta_;
};

}  // namespace

double subsampled_gaussian_prv_cdf(double q, double sigma, double t) {
  AEGIS_CHECK(q > 0 && q <= 1, InvalidArgument, "sample rate must be in (0, 1], got " << q);
  AEGIS_CHECK(sigma > 0 && std::isfinite(sigma), InvalidArgument, "noise multiplier must be > 0, got " << sigma);
  return SubsampledGaussian{q, sigma}.cdf(t);
}

PrvEpsilon prv_epsilon(const std::vector<DpSegment>& history, double delta, const PrvOptions& options) {
  AEGIS_CHECK(delta > 0 && delta < 1, InvalidArgument, "delta must be in (0, 1), got " << delta);
  AEGIS_CHECK(options.eps_error_ > 0 && std::isfinite(options.eps_error_), InvalidArgument,
              "eps_error must be > 0, got " << options.eps_error_);
  const double delta_error = options.delta_error_ == 0 ? delta / 1000 : options.delta_error_;
  AEGIS_CHECK(delta_error > 0 && delta_error < delta, InvalidArgument,
              "delta_error must be in (0, delta), got " << delta_error << " for delta " << delta);
  std::vector<DpSegment> segments;
  int64_t total = 0;
  for (const DpSegment& s : history) {
    AEGIS_CHECK(s.sample_rate > 0 && s.sample_rate <= 1, InvalidArgument,
                "sample rate must be in (0, 1], got " << s.sample_rate);
    AEGIS_CHECK(s.noise_multiplier > 0 && std::isfinite(s.noise_multiplier), InvalidArgument,
                "noise multiplier must be > 0, got " << s.noise_multiplier);
    AEGIS_CHECK(s.steps >= 0, InvalidArgument, "step count must be >= 0, got " << s.steps);
    if (s.steps == 0) continue;
    segments.push_back(s);
    total += s.steps;
  }
  if (segments.empty()) return {0, 0, 0};

  // Grid: half-width from RDP, mesh from Gopi et al. Thm. 5.5 (as Opacus).
  const double half_width = safe_domain_half_width(segments, options.eps_error_, delta_error);
  AEGIS_CHECK(half_width < 690, Unsupported,
              "epsilon is too large for the PRV accountant (RDP bound " << half_width - 3 << "); use RDP");
  const double mesh = options.eps_error_ / std::sqrt(double(total) * std::log(12 / delta_error) / 2);
  const double points = 2 * half_width / mesh;
  AEGIS_CHECK(points <= double(options.max_grid_points_), Unsupported,
              "the PRV grid would need " << int64_t(points) << " points (limit " << options.max_grid_points_
                                         << "); raise eps_error or use RDP");
  const Grid base = aligned_grid(-half_width, half_width, mesh);
  AEGIS_CHECK(std::numeric_limits<long double>::epsilon() * double(base.size) <= delta - delta_error, InvalidArgument,
              "delta " << delta << " is too small for the PRV grid's floating point precision");

  Discrete composed;
  for (size_t k = 0; k < segments.size(); ++k) {
    Discrete one = compose_self(discretise(segments[k], base), segments[k].steps);
    composed = k == 0 ? std::move(one) : compose_two(composed, one);
  }
  const EpsilonSolver solver(composed);
  // Epsilon is >= 0 by definition; with very little privacy loss the
  // discrete solution and the error band dip below it.
  PrvEpsilon e;
  e.upper = std::max(0.0, solver.epsilon(delta - delta_error) + options.eps_error_);
  e.lower = std::max(0.0, solver.epsilon(delta + delta_error) - options.eps_error_);
  e.estimate = std::max(0.0, solver.epsilon(delta));
  return e;
}

}  // namespace aegis
