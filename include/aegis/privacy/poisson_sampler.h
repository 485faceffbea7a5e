#pragma once
/// Poisson sampling for DP-SGD: each of the N training examples joins a
/// logical batch independently with probability q, the sampling rate the
/// accountant is told. Batches vary in size and may be empty (an empty batch
/// is still a step: it adds noise and is accounted). Drawn by geometric gaps
/// between chosen indices, so a step costs O(qN) draws, not O(N).
///
///   PoissonSampler sampler(60000, 256.0 / 60000);
///   std::vector<int64_t> batch = sampler.sample(rng.stream(step));  // sorted indices

#include <cstdint>
#include <vector>

#include "aegis/privacy/dp_random.h"

namespace aegis {

class PoissonSampler {
 public:
  /// dataset_size >= 1, sample_rate in (0, 1]; InvalidArgument otherwise.
  PoissonSampler(int64_t dataset_size, double sample_rate);
  /// One logical batch: ascending indices in [0, dataset_size).
  std::vector<int64_t> sample(DpStream& stream) const;
  double sample_rate() const { return q_; }
  int64_t dataset_size() const { return n_; }

 private:
  int64_t n_;
  double q_;
};

}  // namespace aegis
