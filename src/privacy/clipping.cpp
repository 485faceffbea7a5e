#include "aegis/privacy/clipping.h"

#include <cmath>

#include "aegis/core/error.h"

namespace aegis {

namespace {

torch::Tensor squared_norms(const torch::Tensor& g) { return g.reshape({g.size(0), -1}).pow(2).sum(1); }

torch::Tensor weighted_sum(const torch::Tensor& factor, const torch::Tensor& g) {
  return torch::tensordot(factor.to(g.scalar_type()), g, {0}, {0});
}

}  // namespace

void check_clipping(double max_norm, const std::string& mode) {
  AEGIS_CHECK(max_norm > 0 && std::isfinite(max_norm), InvalidArgument,
              "the clipping norm must be > 0, got " << max_norm);
  AEGIS_CHECK(mode == "flat" || mode == "per-layer", InvalidArgument,
              "clipping must be 'flat' or 'per-layer', got '" << mode << "'");
}

torch::Tensor clip_factors(const torch::Tensor& sq, double max_norm) {
  return (max_norm / (sq.sqrt() + 1e-6)).clamp_max(1.0);
}

torch::Tensor per_sample_norms(const std::vector<torch::Tensor>& grads) {
  AEGIS_CHECK(!grads.empty(), InvalidArgument, "no gradients");
  torch::Tensor sq = torch::zeros({grads[0].size(0)}, grads[0].options().dtype(torch::kDouble));
  for (const auto& g : grads) sq += squared_norms(g).to(torch::kDouble);
  return sq.sqrt();
}

std::vector<torch::Tensor> clip_and_sum(const std::vector<torch::Tensor>& grads, double max_norm,
                                        const std::string& mode) {
  check_clipping(max_norm, mode);
  std::vector<torch::Tensor> out;
  if (grads.empty()) return out;
  if (mode == "flat") {
    torch::Tensor sq = torch::zeros({grads[0].size(0)}, grads[0].options());
    for (const auto& g : grads) sq += squared_norms(g);
    torch::Tensor factor = clip_factors(sq, max_norm);
    for (const auto& g : grads) out.push_back(weighted_sum(factor, g));
  } else {
    const double per_layer = max_norm / std::sqrt(double(grads.size()));
    for (const auto& g : grads) out.push_back(weighted_sum(clip_factors(squared_norms(g), per_layer), g));
  }
  return out;
}

}  // namespace aegis
