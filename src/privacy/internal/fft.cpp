#include "privacy/internal/fft.h"

#include <algorithm>
#include <cmath>
#include <memory>

#include "aegis/core/error.h"

namespace aegis::internal {
namespace {

bool is_pow2(size_t n) { return n != 0 && (n & (n - 1)) == 0; }

/// a * b without std::complex's NaN/infinity recovery (all values here are finite).
Complex mul(Complex a, Complex b) {
  return {a.real() * b.real() - a.imag() * b.imag(), a.real() * b.imag() + a.imag() * b.real()};
}

size_t next_pow2(size_t n) {
  size_t m = 1;
  while (m < n) m <<= 1;
  return m;
}

/// Bluestein: X_k = c_k sum_j (x_j c_j) conj(c_{k-j}) with c_m = exp(-i pi m^2 / n),
/// a linear convolution done with power-of-two FFTs. m^2 is reduced mod 2n in
/// integers so the chirp's phase stays exact for long inputs. Built once per
/// length, it serves forward and inverse transforms.
class Bluestein {
 public:
  explicit Bluestein(size_t n) : n_(n), m_(next_pow2(2 * n - 1)), chirp_(n), kernel_(m_, Complex(0, 0)) {
    const uint64_t two_n = 2 * uint64_t(n);
    for (size_t j = 0; j < n; ++j) {
      const uint64_t r = (uint64_t(j) * uint64_t(j)) % two_n;
      chirp_[j] = std::polar(1.0, -M_PI * double(r) / double(n));
    }
    kernel_[0] = std::conj(chirp_[0]);
    for (size_t j = 1; j < n; ++j) kernel_[j] = kernel_[m_ - j] = std::conj(chirp_[j]);
    fft_pow2(kernel_, false);
  }

  std::vector<Complex> forward(const std::vector<Complex>& x) const {
    std::vector<Complex> a(m_, Complex(0, 0));
    for (size_t j = 0; j < n_; ++j) a[j] = mul(x[j], chirp_[j]);
    fft_pow2(a, false);
    for (size_t j = 0; j < m_; ++j) a[j] = mul(a[j], kernel_[j]);
    fft_pow2(a, true);
    std::vector<Complex> out(n_);
    for (size_t k = 0; k < n_; ++k) out[k] = mul(a[k], chirp_[k]);
    return out;
  }

  /// conj(DFT(conj(x))) / n.
  std::vector<Complex> inverse(std::vector<Complex> x) const {
    for (Complex& c : x) c = std::conj(c);
    std::vector<Complex> y = forward(x);
    const double s = 1.0 / double(n_);
    for (Complex& c : y) c = std::conj(c) * s;
    return y;
  }

 private:
  size_t n_, m_;
  std::vector<Complex> chirp_, kernel_;
};

}  // namespace

namespace {

/// Butterflies of the stages len = first_len .. last_len (powers of two) on
/// a[0, count), which must be a multiple of last_len. tw holds the twiddles of
/// stage len at [len / 2 - 1, len - 1): e^{-2 pi i k / len}, k < len / 2.
void butterflies(double* d, size_t count, size_t first_len, size_t last_len, const Complex* tw, double sign) {
  for (size_t len = first_len; len <= last_len; len <<= 1) {
    const size_t half = len / 2;
    const Complex* w = tw + (half - 1);
    for (size_t start = 0; start < count; start += len) {
      for (size_t k = 0; k < half; ++k) {
        const double wr = w[k].real(), wi = sign * w[k].imag();
        double* u = d + 2 * (start + k);
        double* v = u + 2 * half;
        const double vr = v[0] * wr - v[1] * wi, vi = v[0] * wi + v[1] * wr;
        v[0] = u[0] - vr;
        v[1] = u[1] - vi;
        u[0] += vr;
        u[1] += vi;
      }
    }
  }
}

}  // namespace

void fft_pow2(std::vector<Complex>& a, bool inverse) {
  const size_t n = a.size();
  AEGIS_CHECK(is_pow2(n), Internal, "fft_pow2 needs a power-of-two length, got " << n);
  if (n == 1) return;
  for (size_t i = 1, j = 0; i < n; ++i) {  // bit reversal
    size_t bit = n >> 1;
    for (; j & bit; bit >>= 1) j ^= bit;
    j ^= bit;
    if (i < j) std::swap(a[i], a[j]);
  }
  // Twiddles stage by stage (contiguous per stage), each computed directly
  // rather than by recurrence for accuracy, and kept for the next transform of
  // the same length; the inverse uses their conjugates.
  thread_local std::vector<Complex> tw;
  if (tw.size() != n - 1) {
    tw.resize(n - 1);
    for (size_t len = 2; len <= n; len <<= 1) {
      for (size_t k = 0; k < len / 2; ++k) tw[len / 2 - 1 + k] = std::polar(1.0, -2 * M_PI * double(k) / double(len));
    }
  }
  const double sign = inverse ? -1.0 : 1.0;
  // Plain real arithmetic: std::complex's operator* checks for NaN and infinity
  // on every product. The stages that fit a cache-sized block run block by
  // block, the rest over the whole array.
  double* d = reinterpret_cast<double*>(a.data());
  const size_t block = std::min<size_t>(n, size_t(1) << 13);
  for (size_t start = 0; start < n; start += block) butterflies(d + 2 * start, block, 2, block, tw.data(), sign);
  if (block < n) butterflies(d, n, 2 * block, n, tw.data(), sign);
  if (inverse) {
    const double s = 1.0 / double(n);
    for (size_t i = 0; i < 2 * n; ++i) d[i] *= s;
  }
}

std::vector<Complex> dft(std::vector<Complex> x, bool inverse) {
  const size_t n = x.size();
  if (n <= 1) return x;
  if (is_pow2(n)) {
    fft_pow2(x, inverse);
    return x;
  }
  const Bluestein b(n);
  return inverse ? b.inverse(std::move(x)) : b.forward(x);
}

std::vector<double> circular_self_convolution(const std::vector<double>& p, int64_t times) {
  AEGIS_CHECK(times >= 1, Internal, "self-convolution count must be >= 1, got " << times);
  const size_t n = p.size();
  std::vector<Complex> f(p.begin(), p.end());
  std::unique_ptr<Bluestein> b;  // one chirp for both directions
  if (is_pow2(n)) {
    fft_pow2(f, false);
  } else {
    b = std::make_unique<Bluestein>(n);
    f = b->forward(f);
  }
  const double k = double(times);
  for (Complex& c : f) {
    // c^times in polar form: |c|^times underflows cleanly to 0.
    const double r = std::abs(c);
    c = r == 0 ? Complex(0, 0) : std::polar(std::exp(k * std::log(r)), k * std::arg(c));
  }
  if (b) {
    f = b->inverse(std::move(f));
  } else {
    fft_pow2(f, true);
  }
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = f[i].real();
  return out;
}

std::vector<double> convolve_same(const std::vector<double>& a, const std::vector<double>& b) {
  AEGIS_CHECK(a.size() == b.size() && !a.empty(), Internal, "convolve_same needs equal, non-empty lengths");
  const size_t n = a.size(), m = next_pow2(2 * n - 1);
  std::vector<Complex> fa(m, Complex(0, 0)), fb(m, Complex(0, 0));
  for (size_t i = 0; i < n; ++i) {
    fa[i] = a[i];
    fb[i] = b[i];
  }
  fft_pow2(fa, false);
  fft_pow2(fb, false);
  for (size_t i = 0; i < m; ++i) fa[i] = mul(fa[i], fb[i]);
  fft_pow2(fa, true);
  std::vector<double> out(n);
  const size_t start = (n - 1) / 2;  // the centre of the 2n - 1 full values
  for (size_t i = 0; i < n; ++i) out[i] = fa[start + i].real();
  return out;
}

}  // namespace aegis::internal
