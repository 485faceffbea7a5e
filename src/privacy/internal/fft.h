#pragma once
/// The discrete Fourier transforms the PRV accountant composes with: an
/// iterative radix-2 FFT, Bluestein's chirp-z transform for any other length
/// (so a circular convolution keeps exactly the length the grid has, as
/// numpy's FFT does), and the two convolutions built on them.

#include <complex>
#include <cstdint>
#include <vector>

namespace aegis::internal {

using Complex = std::complex<double>;

/// In-place DFT of a power-of-two length; `inverse` conjugates the kernel and
/// divides by the length.
void fft_pow2(std::vector<Complex>& a, bool inverse);

/// DFT of any length (radix-2 when it is a power of two, Bluestein otherwise);
/// `inverse` as fft_pow2.
std::vector<Complex> dft(std::vector<Complex> x, bool inverse);

/// The `times`-fold circular self-convolution of p (length kept), by raising its
/// DFT to the power `times`: numpy's irfft(rfft(p) ** times).
std::vector<double> circular_self_convolution(const std::vector<double>& p, int64_t times);

/// The central a.size() values of the linear convolution a * b (equal
/// lengths): scipy.signal.convolve(a, b, mode="same").
std::vector<double> convolve_same(const std::vector<double>& a, const std::vector<double>& b);

}  // namespace aegis::internal
