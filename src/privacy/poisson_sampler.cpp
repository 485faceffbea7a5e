#include "aegis/privacy/poisson_sampler.h"

#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

PoissonSampler::PoissonSampler(int64_t dataset_size, double sample_rate) : n_(dataset_size), q_(sample_rate) {
  AEGIS_CHECK(dataset_size >= 1, InvalidArgument, "Poisson sampling needs at least one example");
  AEGIS_CHECK(sample_rate > 0 && sample_rate <= 1, InvalidArgument,
              "the sampling rate must be in (0, 1], got " << sample_rate);
}

std::vector<int64_t> PoissonSampler::sample(DpStream& stream) const {
  std::vector<int64_t> out;
  if (q_ >= 1) {
    out.resize(size_t(n_));
    for (int64_t i = 0; i < n_; ++i) out[size_t(i)] = i;
    return out;
  }
  // The gap before the next chosen index is geometric: P(gap = k) = (1 - q)^k q,
  // i.e. floor(log(u) / log(1 - q)) for u uniform on (0, 1].
  const double log1mq = std::log1p(-q_);
  double i = -1;
  while (true) {
    const double u = 1.0 - stream.uniform();
    i += std::floor(std::log(u) / log1mq) + 1;
    if (i >= double(n_)) break;
    out.push_back(int64_t(i));
  }
  return out;
}

}  // namespace aegis
