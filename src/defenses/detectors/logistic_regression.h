#pragma once
// Internal to the detectors: the L2-regularised logistic regression that
// learns a detector's feature weights, clean inputs (label 0) against
// adversarial ones (label 1), each class weighing half however many samples
// it has. Newton's method on the convex loss; the bias is not penalised.

#include <torch/types.h>

namespace aegis::detector_internal {

/// Features [n_clean, L] and [n_adv, L] (double) -> weights [L + 1], the bias
/// last. Throws InvalidArgument for empty inputs or l2 <= 0, Internal when it
/// diverges.
torch::Tensor fit_logistic_weights(const torch::Tensor& clean, const torch::Tensor& adversarial, double l2);

}  // namespace aegis::detector_internal
