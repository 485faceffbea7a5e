#pragma once
/// Neural Cleanse (Wang et al. 2019): a backdoor scan of a finished model,
/// without its training data. For each class it reverse-engineers the
/// smallest trigger (a mask and a pattern) that sends clean inputs of other
/// classes to that class. A backdoored class needs a far smaller trigger than
/// the others; the anomaly index of a class is how many (consistency-scaled)
/// median absolute deviations its mask's L1 norm lies below the median of all
/// classes. A class with an anomaly index above `anomaly_threshold` (2, as in
/// the paper) is flagged.
///
///   NeuralCleanseResult r = neural_cleanse(*model, clean_sample,
///   NeuralCleanseOptions().steps(300)); if (!r.flagged_classes.empty()) ...;
///   // r.classes[c].mask_l1, .anomaly_index
///
/// Needs a white-box image model [C, H, W] and a few hundred clean inputs.
/// A clean verdict means no *small patch-like* trigger was found for any
/// class; it does not rule out other backdoors (large, blended or
/// input-specific triggers).

#include <torch/types.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <vector>

#include "aegis/core/classifier.h"
#include "aegis/core/dataset.h"

namespace aegis {

struct NeuralCleanseOptions {
  int64_t steps_ = 300;  ///< optimisation steps per class, >= 1
  int64_t batch_size_ = 64;
  double lr_ = 0.1;                      ///< Adam step on the mask and pattern parameters
  double init_cost_ = 1e-3;              ///< initial weight of the mask's L1 norm
  double attack_success_target_ = 0.99;  ///< success rate a reversed trigger must reach over a whole window
  int64_t cost_patience_ = 10;           ///< steps between adjustments of the cost weight (one window)
  int64_t early_stop_windows_ = 10;      ///< early stop: windows without 1% shrinkage (0 = never)
  double anomaly_threshold_ = 2.0;       ///< classes above are flagged
  /// Weight of the mask's total variation beside its L1 norm (0 = the
  /// paper). A planted trigger is a compact patch; the small natural
  /// "triggers" some classes have (a few scattered pixels) are not, and a
  /// smoothness term makes them cost more (TABOR, Guo et al. 2019).
  double smoothness_ = 0.0;
  uint64_t seed_ = 0;

  NeuralCleanseOptions& steps(int64_t v) { steps_ = v; return *this; }
  NeuralCleanseOptions& batch_size(int64_t v) { batch_size_ = v; return *this; }
  NeuralCleanseOptions& lr(double v) { lr_ = v; return *this; }
  NeuralCleanseOptions& init_cost(double v) { init_cost_ = v; return *this; }
  NeuralCleanseOptions& attack_success_target(double v) { attack_success_target_ = v; return *this; }
  NeuralCleanseOptions& cost_patience(int64_t v) { cost_patience_ = v; return *this; }
  NeuralCleanseOptions& early_stop_windows(int64_t v) { early_stop_windows_ = v; return *this; }
  NeuralCleanseOptions& anomaly_threshold(double v) { anomaly_threshold_ = v; return *this; }
  NeuralCleanseOptions& smoothness(double v) { smoothness_ = v; return *this; }
  NeuralCleanseOptions& seed(uint64_t v) { seed_ = v; return *this; }
  nlohmann::json to_json() const;
};

struct ReversedTrigger {
  int64_t target = 0;
  double mask_l1 = 0;              ///< L1 norm of the smallest successful mask (pixels)
  double attack_success_rate = 0;  ///< of that trigger on the clean inputs of other classes
  bool reached_target = false;     ///< the success target was met at some step
  int64_t steps = 0;               ///< optimisation steps run (fewer than asked after an early stop)
  double anomaly_index = 0;        ///< (median - mask_l1) / (1.4826 * MAD); > 0 means
                                   ///< smaller than typical
  torch::Tensor mask;              ///< [1, H, W] in [0, 1]
  torch::Tensor pattern;           ///< [C, H, W] in the valid range
};

struct NeuralCleanseResult {
  std::vector<ReversedTrigger> classes;  ///< one per class
  std::vector<int64_t> flagged_classes;  ///< anomaly index above the threshold
  double median_l1 = 0, mad = 0;
  double seconds = 0;
  nlohmann::json options;
  bool backdoor_suspected() const { return !flagged_classes.empty(); }
  /// Per class: target, mask_l1, attack_success_rate, reached_target,
  /// anomaly_index; flagged, median, MAD.
  nlohmann::json to_json() const;
};

/// Anomaly indices of a set of norms (the paper's MAD rule); exposed for tests.
std::vector<double> anomaly_indices(const std::vector<double>& norms);

/// `clean` holds clean inputs (labels used to exclude each target's own
/// class). Throws Unsupported for black-box models, InvalidArgument for
/// non-image models or data too small, ShapeMismatch when data and model
/// disagree.
NeuralCleanseResult neural_cleanse(Classifier& model, const Dataset& clean, const NeuralCleanseOptions& options = {});

}  // namespace aegis
