#include "aegis/privacy/dp_random.h"

#include <sodium.h>

#include <cmath>
#include <cstring>

#include "aegis/core/error.h"

namespace aegis {

namespace {

constexpr size_t kBufferBytes = 1 << 16;

void ensure_sodium() {
  static const int ok = sodium_init();
  AEGIS_CHECK(ok >= 0, Internal, "libsodium failed to initialise");
}

}  // namespace

DpRandom DpRandom::secure() {
  ensure_sodium();
  return DpRandom(false, 0);
}

DpRandom DpRandom::seeded(uint64_t seed) {
  ensure_sodium();
  return DpRandom(true, seed);
}

DpStream DpRandom::stream(int64_t step) const {
  std::array<uint8_t, 32> key{};
  if (seeded_) {  // key = BLAKE2b-256("aegis-dp-sgd" || seed || step)
    uint8_t in[12 + 16];
    std::memcpy(in, "aegis-dp-sgd", 12);
    for (int i = 0; i < 8; ++i) in[12 + i] = uint8_t(seed_ >> (8 * i));
    for (int i = 0; i < 8; ++i) in[20 + i] = uint8_t(uint64_t(step) >> (8 * i));
    crypto_generichash(key.data(), key.size(), in, sizeof in, nullptr, 0);
  }
  return DpStream(seeded_, key);
}

void DpStream::refill() {
  buffer_.resize(kBufferBytes);
  if (seeded_) {
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {};
    for (int i = 0; i < 8; ++i) nonce[i] = uint8_t(block_ >> (8 * i));
    crypto_stream_chacha20(buffer_.data(), buffer_.size(), nonce, key_.data());
    ++block_;
  } else {
    randombytes_buf(buffer_.data(), buffer_.size());
  }
  used_ = 0;
}

void DpStream::bytes(uint8_t* out, size_t n) {
  while (n > 0) {
    if (used_ == buffer_.size()) refill();
    const size_t take = std::min(n, buffer_.size() - used_);
    std::memcpy(out, buffer_.data() + used_, take);
    used_ += take;
    out += take;
    n -= take;
  }
}

double DpStream::uniform() {
  uint64_t v = 0;
  bytes(reinterpret_cast<uint8_t*>(&v), sizeof v);
  return double(v >> 11) * 0x1.0p-53;
}

torch::Tensor DpStream::gaussian(const std::vector<int64_t>& shape, double std) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  const int64_t pairs = (n + 1) / 2;
  torch::Tensor raw = torch::empty({2, pairs}, torch::kLong);
  bytes(reinterpret_cast<uint8_t*>(raw.data_ptr<int64_t>()), size_t(2 * pairs) * sizeof(int64_t));
  // 53-bit uniforms: u1 in (0, 1] (log is finite), u2 in [0, 1).
  torch::Tensor u = raw.bitwise_right_shift(11).bitwise_and((int64_t(1) << 53) - 1).to(torch::kDouble) * 0x1.0p-53;
  torch::Tensor u1 = 1.0 - u[0], u2 = u[1];
  torch::Tensor r = torch::sqrt(-2.0 * torch::log(u1)) * std;
  torch::Tensor z = torch::cat({r * torch::cos(2 * M_PI * u2), r * torch::sin(2 * M_PI * u2)});
  return z.slice(0, 0, n).to(torch::kFloat).reshape(shape);
}

}  // namespace aegis
