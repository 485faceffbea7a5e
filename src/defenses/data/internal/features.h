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

/// How empty the gap between two groups of 1-D values is: a Gaussian kernel
/// density (Silverman's bandwidth 0.9 * sd * n^-1/5, with sd the pooled
/// within-group deviation) is evaluated on `grid` points; the result is its
/// lowest value between the two group medians divided by the lower of the two
/// peaks on either side of that low point. Near 0: the groups are separated by
/// an empty gap; near 1: one continuous mode (or a shoulder). `first` marks the
/// members of one group; both groups need at least 2 members (else 1).
double valley_ratio(const torch::Tensor& values, const torch::Tensor& first, int64_t grid = 256);

/// Rows projected on the top `k` principal directions of x (x centred inside).
torch::Tensor pca(const torch::Tensor& x, int64_t k);

}  // namespace aegis::internal
