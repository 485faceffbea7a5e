#pragma once
/// The randomness of DP-SGD (Poisson sampling and Gaussian noise): by default
/// the operating system's cryptographically secure generator (libsodium's
/// randombytes_buf, i.e. getrandom), since the guarantee assumes the noise is
/// unpredictable; or, for reproducible experiments, a ChaCha20 stream keyed
/// by (seed, step), which the trained model's metadata labels as seeded. A
/// step's stream depends only on the seed and the step's number, so a resumed
/// run draws exactly what the uninterrupted one would have drawn.
///
///   DpRandom rng = DpRandom::secure();            // or DpRandom::seeded(7)
///   DpStream s = rng.stream(step);
///   double u = s.uniform();                         // [0, 1), 53 bits
///   torch::Tensor z = s.gaussian({128, 64}, 0.5);   // N(0, 0.5^2), float

#include <torch/types.h>

#include <array>
#include <cstdint>
#include <vector>

namespace aegis {

/// Random bytes, uniforms and Gaussians for one logical step.
class DpStream {
 public:
  void bytes(uint8_t* out, size_t n);
  /// Uniform on [0, 1) with 53 random bits.
  double uniform();
  /// Float tensor of independent N(0, std^2) draws (Box-Muller in double from
  /// 53-bit uniforms).
  torch::Tensor gaussian(const std::vector<int64_t>& shape, double std);

 private:
  friend class DpRandom;
  DpStream(bool seeded, const std::array<uint8_t, 32>& key) : seeded_(seeded), key_(key) {}
  void refill();
  bool seeded_;
  std::array<uint8_t, 32> key_;
  uint64_t block_ = 0;
  std::vector<uint8_t> buffer_;
  size_t used_ = 0;
};

class DpRandom {
 public:
  /// The operating system's CSPRNG (the default for DP-SGD).
  static DpRandom secure();
  /// A reproducible ChaCha20 stream from `seed`: NOT for models whose
  /// privacy matters (anyone who knows the seed can subtract the noise).
  static DpRandom seeded(uint64_t seed);

  bool is_seeded() const { return seeded_; }
  uint64_t seed() const { return seed_; }
  /// The stream for logical step `step` (seeded: a function of seed and step only).
  DpStream stream(int64_t step) const;

 private:
  DpRandom(bool seeded, uint64_t seed) : seeded_(seeded), seed_(seed) {}
  bool seeded_;
  uint64_t seed_;
};

}  // namespace aegis
