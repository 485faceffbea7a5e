#pragma once
// Model evaluations of feature coalitions for the perturbation explainers
// (ablation, KernelSHAP, LIME): one sample with the features of each
// coalition kept and the others taken from each reference input.

#include <torch/types.h>

#include <cstdint>

#include "aegis/core/classifier.h"

namespace aegis::explain {

/// v[k] = mean over references r of f(where(keep[k][ids], x, refs[r])), f the
/// target's logit, in double. x and ids: one sample's shape; keep: [K, G]
/// bool; refs: [R, input_shape...]. The composites go through the model at
/// most max_batch at a time (at least one coalition's R references).
torch::Tensor coalition_values(Classifier& model, const torch::Tensor& x, const torch::Tensor& ids,
                               const torch::Tensor& keep, const torch::Tensor& refs, int64_t target, int64_t max_batch);

/// Spreads per-group values [G] over the features of one sample (ids: the
/// sample's shape), each feature getting its group's value divided by the
/// group's size, so the features of a group sum to the group's value.
torch::Tensor spread_over_groups(const torch::Tensor& group_values, const torch::Tensor& ids);

}  // namespace aegis::explain
