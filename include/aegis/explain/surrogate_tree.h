#pragma once
/// A global surrogate: a CART decision tree (Breiman et al. 1984; Gini
/// impurity, binary splits "feature <= threshold") fitted to the *model's*
/// predictions over a dataset, so that its rules describe what the model
/// does, not what the labels say. Its fidelity (agreement with the model) on
/// held-out data says how far the rules can be trusted; every internal node
/// also keeps its majority class, so one fitted tree answers for every depth
/// up to its own, and the fidelity is reported per depth (the greedy tree cut
/// at depth d is the tree CART grows with max depth d).
///
/// Splits are searched over at most `bins` candidate thresholds per feature
/// (the fitting data's quantiles; exact for 8-bit images with bins >= 256),
/// with class histograms per node: a level costs one pass over the samples
/// and features, so Fashion-MNIST's 784 pixels and 60,000 images fit in
/// seconds.
///
///   SurrogateTreeResult r = fit_surrogate_tree(*model, train, held_out, SurrogateTreeOptions().max_depth(10));
///   r.fidelity_by_depth[10];            // share of held-out samples where the tree agrees with the model
///   std::cout << r.tree.rules(names, classes);

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct SurrogateTreeOptions {
  int64_t max_depth_ = 10;        ///< >= 1
  int64_t min_samples_leaf_ = 5;  ///< each side of a split keeps at least this many samples, >= 1
  int64_t bins_ = 64;             ///< candidate thresholds per feature, in [2, 256]
  int64_t batch_size_ = 256;      ///< for the model's predictions

  SurrogateTreeOptions& max_depth(int64_t v) { max_depth_ = v; return *this; }
  SurrogateTreeOptions& min_samples_leaf(int64_t v) { min_samples_leaf_ = v; return *this; }
  SurrogateTreeOptions& bins(int64_t v) { bins_ = v; return *this; }
  SurrogateTreeOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }

  /// InvalidArgument naming the first bad field.
  void validate() const;
  nlohmann::json to_json() const;
};

struct TreeNode {
  int64_t feature = -1;  ///< -1 for a leaf
  double threshold = 0;  ///< goes left when x[feature] <= threshold
  int64_t left = -1, right = -1;
  int64_t label = 0;    ///< majority class of the node's samples
  int64_t samples = 0;  ///< fitting samples that reach the node
  double purity = 0;    ///< share of them with the majority class
  int64_t depth = 0;
};

class SurrogateTree {
 public:
  /// Fits on x [N, ...] (flattened to features) and labels [N] in [0, classes).
  static SurrogateTree fit(const torch::Tensor& x, const torch::Tensor& labels, int64_t classes,
                           const SurrogateTreeOptions& options);
  /// Predicted class per sample, stopping at `depth` (-1: the whole tree).
  torch::Tensor predict(const torch::Tensor& x, int64_t depth = -1) const;
  int64_t depth() const;
  int64_t leaves() const;
  const std::vector<TreeNode>& nodes() const { return nodes_; }
  /// The tree as nested if/else rules, down to `max_depth` (-1: all). Feature
  /// names default to "x[i]" (or "pixel (row, col)" for image shapes given in
  /// `sample_shape`); class names to the class index.
  std::string rules(const std::vector<int64_t>& sample_shape, const std::vector<std::string>& class_names = {},
                    int64_t max_depth = -1) const;
  nlohmann::json to_json() const;

 private:
  std::vector<TreeNode> nodes_;
};

struct SurrogateTreeResult {
  SurrogateTree tree;
  /// Index d: agreement with the model of the tree cut at depth d (0 = the
  /// majority class alone), on the held-out data and on the fitting data.
  std::vector<double> fidelity_by_depth, train_fidelity_by_depth;
  /// The tree's accuracy against the held-out data's true labels, per depth,
  /// and the model's own.
  std::vector<double> accuracy_by_depth;
  double model_accuracy = 0;
  int64_t fit_samples = 0, held_out_samples = 0;
  double seconds = 0;
  nlohmann::json to_json() const;
};

/// Labels `fit` and `held_out` with the model's predictions, fits the tree on
/// the first and measures it on the second.
SurrogateTreeResult fit_surrogate_tree(Classifier& model, const Dataset& fit, const Dataset& held_out,
                                       const SurrogateTreeOptions& options = {});

}  // namespace aegis
