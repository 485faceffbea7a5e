#pragma once
// Shared by the poisoned-sample detectors: penultimate features of a whole
// dataset, two-means clustering and PCA.

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

#include "aegis/core/dataset.h"
#include "aegis/core/script_classifier.h"

namespace aegis::internal {

/// [N, D] float features of every sample (checks shape compatibility and
/// features()).
torch::Tensor dataset_features(ScriptClassifier& model, const Dataset& data, int64_t batch_size);

struct TwoMeans {
  torch::Tensor assignment;  ///< [n] int64 in {0, 1}
  torch::Tensor centres;     ///< [2, d]
  double inertia = 0;        ///< within-cluster sum of squares
};
/// k-means with k = 2 and k-means++ starts; the best of `restarts`.
TwoMeans two_means(const torch::Tensor& x, int64_t restarts, at::Generator& gen, int64_t iterations = 50);

/// Mean silhouette of a two-cluster assignment (exact; x should be at most a
/// few thousand rows).
double silhouette(const torch::Tensor& x, const torch::Tensor& assignment);

/// Rows projected on the top `k` principal directions of x (x centred inside).
torch::Tensor pca(const torch::Tensor& x, int64_t k);

}  // namespace aegis::internal
