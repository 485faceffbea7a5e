#pragma once
/// Per-sample gradient clipping for DP-SGD: each example's gradient is scaled
/// down to norm at most C before the batch is summed, which bounds what one
/// example can change (the sensitivity the Gaussian noise is calibrated to).
/// "flat" clips the whole gradient to C; "per-layer" clips each parameter
/// tensor to C / sqrt(K) for K parameter tensors, so the whole stays within C
/// and the same noise std sigma * C applies.
///
///   std::vector<torch::Tensor> sum = clip_and_sum(g.grads, 1.0, "flat");

#include <torch/types.h>

#include <string>
#include <vector>

namespace aegis {

/// Throws InvalidArgument unless max_norm > 0 (finite) and mode is "flat" or "per-layer".
void check_clipping(double max_norm, const std::string& mode);

/// The scale of each sample, min(1, max_norm / (norm + 1e-6)), from the
/// squared norms [B] (as Opacus; 1e-6 keeps a zero gradient finite).
torch::Tensor clip_factors(const torch::Tensor& squared_norms, double max_norm);

/// Per-sample L2 norms [B] of the gradient spread over `grads` ([B, ...] each).
torch::Tensor per_sample_norms(const std::vector<torch::Tensor>& grads);

/// Clips each sample's gradient (grads[i]: [B, *shape_i]) to `max_norm`
/// ("flat" or "per-layer") and sums over the batch: one [shape_i] per entry.
/// InvalidArgument for max_norm <= 0 or an unknown mode.
std::vector<torch::Tensor> clip_and_sum(const std::vector<torch::Tensor>& grads, double max_norm,
                                        const std::string& mode = "flat");

}  // namespace aegis
