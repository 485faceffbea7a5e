#pragma once
// Shared by the poisoning attacks: seeded choice of exactly k samples among
// the eligible ones, and the fingerprints of a result.

#include <torch/torch.h>

#include <algorithm>
#include <cstdint>
#include <string_view>
#include <vector>

#include "aegis/core/random.h"

namespace aegis::internal {

/// Exactly k of `eligible` (a bool mask [N]), chosen by (seed, purpose),
/// ascending.
inline std::vector<int64_t> choose_samples(const torch::Tensor& eligible, int64_t k, uint64_t seed,
                                           std::string_view purpose) {
  torch::Tensor pool = eligible.nonzero().view(-1);
  auto gen = make_generator(seed, purpose);
  torch::Tensor pick = pool.index_select(0, torch::randperm(pool.size(0), gen, torch::kLong).narrow(0, 0, k));
  std::vector<int64_t> out(pick.data_ptr<int64_t>(), pick.data_ptr<int64_t>() + k);
  std::sort(out.begin(), out.end());
  return out;
}

inline torch::Tensor index_tensor(const std::vector<int64_t>& v) {
  return torch::tensor(std::vector<int64_t>(v), torch::kLong);
}

}  // namespace aegis::internal
